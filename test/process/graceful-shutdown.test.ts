import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { inject } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { slowPost } from '../support/slow-post.ts';

// The built server as a real process: SIGTERM with requests in flight, a
// request arriving while it drains, the deadline, and a bad configuration.
const entry = new URL('../../dist/processes/api.js', import.meta.url).pathname;

type Server = { child: ChildProcess; port: number; output: () => string; exited: Promise<[number | null, NodeJS.Signals | null]> };

/**
 * The built server. Shedding on event-loop lag is off (see testConfig): a
 * process just started on a loaded machine lags past 200 ms, and a request
 * shed with 503 OVERLOADED is not one in flight (test/faults/overload.test.ts
 * is about that). And an AWS attempt may take 5 s, not 1: the emulators share
 * the loaded machine with these 100 simultaneous uploads, and their slowness
 * as 503s is what the fault tests look at, not this one.
 */
function spawnServer(port: number, env: Record<string, string> = {}): Server {
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      ...inject('stackEnv'),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '8000',
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
      AWS_REQUEST_TIMEOUT_MS: '5000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, port, output: () => output, exited };
}

async function ready(server: Server) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) break;
    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server did not become ready:\n${server.output()}`);
}

/** Resolves once a new connection is refused: the server has stopped listening, so it is draining. */
async function refusesConnections(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(true));
    });
    if (refused) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`port ${port} still accepts connections after ${timeoutMs} ms`);
}

/**
 * Two requests pipelined on one raw connection: a POST in flight (the server
 * has its headers, `started`), and, sent with the rest of its body when told,
 * a GET. Resolves with everything the server wrote before closing.
 */
function pipelined(port: number, requestId: string, latePath = '/documents/late') {
  const body = 'in flight';
  const socket: Socket = connect(port, '127.0.0.1', () =>
    socket.write(
      `POST /documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n${body.slice(0, 2)}`,
    ),
  );
  let text = '';
  socket.setEncoding('latin1');
  let started: () => void;
  const inFlight = new Promise<void>((resolve) => (started = resolve));
  socket.on('data', (chunk: string) => {
    text += chunk;
    if (text.includes('100 Continue')) started();
  });
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(text)));
  return {
    started: inFlight,
    finish: () => socket.write(`${body.slice(2)}GET ${latePath} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`),
    answer,
  };
}

/** The answers in what a connection received, interim 100s left out. */
function parseAll(text: string) {
  const answers: { status: number; headers: Record<string, string>; body: string }[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
    const length = Number(headers['content-length'] ?? 0);
    const status = Number(statusLine?.split(' ')[1]);
    if (status !== 100) answers.push({ status, headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return answers;
}

let server: Server;

beforeAll(async () => {
  expect(existsSync(entry), 'run `make build` first (make test does)').toBe(true);
  server = spawnServer(await freePort());
  await ready(server);
});

afterAll(() => {
  if (server.child.exitCode === null) server.child.kill('SIGKILL');
});

describe('graceful shutdown of the built server', () => {
  it('finishes every in-flight request after SIGTERM, answers one arriving meanwhile 503 SHUTTING_DOWN, refuses new connections, exits 0', async () => {
    const { port } = server;
    // 10 kB each: inline in DynamoDB, so below MAX_CONCURRENT_UPLOADS' reach (it caps uploads to S3).
    const inFlight = Array.from({ length: 100 }, (_, i) => slowPost(port, Buffer.alloc(10_000, i)));
    const late = pipelined(port, 'late-1');
    const lateProbe = pipelined(port, 'late-probe', '/health/ready');
    // Every request in flight: the server has parsed its headers and said 100 Continue.
    await Promise.all([...inFlight.map((request) => request.started), late.started, lateProbe.started]);
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');

    // Draining: new connections are refused (the listener is closed) ...
    await refusesConnections(port, 5000);
    // ... and a request that arrives now on an open connection gets the contract's answer.
    late.finish();
    const [first, second] = parseAll(await late.answer);
    expect(first?.status, first?.body).toBe(201);
    expect(second?.status, second?.body).toBe(503);
    expect(second!.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(second!.headers['retry-after']).toBe('1');
    expect(second!.headers['x-request-id']).toBe('late-1');
    expect(second!.headers['x-content-type-options']).toBe('nosniff');
    expect(second!.headers['content-security-policy']).toContain("default-src 'none'");
    expect(second!.headers.connection).toBe('close');
    expect(JSON.parse(second!.body)).toMatchObject({ status: 503, code: 'SHUTTING_DOWN', requestId: 'late-1' });
    // Probes are not shed: readiness answers for itself that the process is going away.
    lateProbe.finish();
    const [, probe] = parseAll(await lateProbe.answer);
    expect(probe?.status, probe?.body).toBe(503);
    expect(probe!.headers['retry-after']).toBe('1');
    expect(probe!.headers['x-content-type-options']).toBe('nosniff');
    expect(JSON.parse(probe!.body)).toEqual({ status: 'shutting down' });

    for (const request of inFlight) request.finish();
    const answers = await Promise.all(inFlight.map((request) => request.answer));
    for (const response of answers) expect(response.status, response.body).toBe(201);
    expect(new Set(answers.map((response) => JSON.parse(response.body).id)).size).toBe(100);

    const [code] = await server.exited;
    expect(code, server.output()).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(8000);
    expect(server.output()).toContain('shut down cleanly');
  });

  it('exits 1 at the deadline when a request never finishes', async () => {
    const slow = spawnServer(await freePort(), { SHUTDOWN_TIMEOUT_MS: '1000' });
    try {
      await ready(slow);
      const stuck = slowPost(slow.port, Buffer.alloc(1000)); // its second half never comes
      stuck.answer.catch(() => {});
      await stuck.started;
      const signalledAt = Date.now();
      slow.child.kill('SIGTERM');
      const [code] = await slow.exited;
      const tookMs = Date.now() - signalledAt;
      expect(code, slow.output()).toBe(1);
      expect(slow.output()).toContain('shutdown deadline passed');
      // Not before the deadline; after it, within a margin for a loaded 2-core machine (process exit, scheduling).
      expect(tookMs).toBeGreaterThanOrEqual(950);
      expect(tookMs).toBeLessThan(1000 + 4000);
    } finally {
      if (slow.child.exitCode === null) slow.child.kill('SIGKILL');
    }
  });

  it.each([
    ['PORT', 'eighty'],
    ['TRUST_PROXY', '10.0.0.999/8'],
  ])('exits 78 (EX_CONFIG) naming the variable when %s is %s', async (name, value) => {
    const bad = spawnServer(await freePort(), { [name]: value });
    try {
      const [code] = await bad.exited;
      expect(code, bad.output()).toBe(78);
      expect(bad.output()).toContain(`${name}:`);
      expect(bad.output()).not.toMatch(/\n\s+at /);
    } finally {
      if (bad.child.exitCode === null) bad.child.kill('SIGKILL');
    }
  });
});
