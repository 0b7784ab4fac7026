import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FaultProxy } from '../support/fault-proxy.ts';

// The harness itself: each mode does what the fault tests rely on, against a
// line-echo server.

let echo: Server;
let proxy: FaultProxy;

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.on('data', (chunk) => socket.write(chunk));
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  proxy = await FaultProxy.start((echo.address() as AddressInfo).port);
});

afterAll(async () => {
  await proxy.close();
  echo.close();
});

type Client = { socket: Socket; received: () => string; error: () => string | undefined; closed: Promise<unknown> };

async function connect(): Promise<Client> {
  const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
  let text = '';
  let error: string | undefined;
  socket.on('data', (chunk) => (text += chunk));
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await once(socket, 'connect');
  return { socket, received: () => text, error: () => error, closed };
}

/** Waits for a condition; the deadline only matters when it never holds, so it is generous (a loaded machine). */
async function until(check: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('fault proxy', () => {
  it('pass: forwards both ways', async () => {
    proxy.pass();
    const client = await connect();
    client.socket.write('hello');
    await until(() => client.received() === 'hello');
    client.socket.destroy();
  });

  it('latency(ms): delays every chunk, in order', async () => {
    proxy.latency(150);
    const client = await connect();
    const started = Date.now();
    client.socket.write('a');
    client.socket.write('b');
    await until(() => client.received() === 'ab');
    // Both directions are delayed: the round trip takes two delays.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    client.socket.destroy();
    proxy.pass();
  });

  it('blackhole: accepts but never answers, stalls live connections, and delivers what it held once it passes', async () => {
    proxy.pass();
    const live = await connect();
    live.socket.write('1');
    await until(() => live.received() === '1');

    proxy.blackhole();
    live.socket.write('2');
    const fresh = await connect(); // the handshake still succeeds
    fresh.socket.write('x');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(live.received()).toBe('1');
    expect(fresh.received()).toBe('');

    proxy.pass();
    await until(() => live.received() === '12' && fresh.received() === 'x');
    live.socket.destroy();
    fresh.socket.destroy();
  });

  it('stallAfter(n): delivers n bytes of the answer, then nothing', async () => {
    proxy.pass();
    const client = await connect();
    proxy.stallAfter(5);
    client.socket.write('0123456789');
    await until(() => client.received() === '01234');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(client.received()).toBe('01234');
    expect(proxy.mode.kind).toBe('blackhole');
    proxy.pass();
    await until(() => client.received() === '0123456789');
    client.socket.destroy();
  });

  it('reset: live connections get an RST, new ones are reset at once', async () => {
    proxy.pass();
    const live = await connect();
    proxy.reset();
    await live.closed;
    expect(live.error()).toBe('ECONNRESET');

    const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNRESET');
    proxy.pass();
    const again = await connect();
    again.socket.write('back');
    await until(() => again.received() === 'back');
    again.socket.destroy();
    expect(proxy.stats.reset).toBeGreaterThanOrEqual(2);
  });
});
