import { once } from 'node:events';
import { createServer, type Server } from 'node:net';

/**
 * `count` distinct free ports, held open together until all are known: asked
 * one at a time, the kernel may hand a port just released out again, and two
 * processes of one test end up on one port.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'));
  await Promise.all(servers.map((server) => once(server, 'listening')));
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('a TCP server has a port');
    return address.port;
  });
  await Promise.all(servers.map((server) => once(server.close(), 'close')));
  return ports;
}
