import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { inject } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { slowPost } from '../support/slow-post.ts';

// The built server as a real process: SIGTERM with requests in flight.
const entry = new URL('../../dist/server.js', import.meta.url).pathname;

let server: ChildProcess;
let port: number;
let output = '';

async function ready() {
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server did not become ready:\n${output}`);
}

beforeAll(async () => {
  expect(existsSync(entry), 'run `make build` first (make test does)').toBe(true);
  port = await freePort();
  server = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      ...inject('stackEnv'),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '8000',
      // The 100 uploads are above INLINE_CONTENT_MAX_BYTES: all in flight at once, past the default cap of 16.
      MAX_CONCURRENT_UPLOADS: '100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (chunk) => (output += chunk));
  server.stderr!.on('data', (chunk) => (output += chunk));
  await ready();
});

afterAll(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
});

describe('graceful shutdown of the built server', () => {
  it('finishes every in-flight request after SIGTERM, refuses new work, and exits 0', async () => {
    const inFlight = Array.from({ length: 100 }, (_, i) => slowPost(port, Buffer.alloc(20_000, i)));
    await new Promise((resolve) => setTimeout(resolve, 300)); // all 100 have sent headers and half a body
    const exited = once(server, 'exit');
    const signalledAt = Date.now();
    server.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));

    // New work after the signal: refused at the socket, or answered 503.
    const late = await fetch(`http://127.0.0.1:${port}/health/live`).then(
      (response) => response.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(late);

    for (const request of inFlight) request.finish();
    const answers = await Promise.all(inFlight.map((request) => request.answer));
    for (const answer of answers) expect(answer.status, answer.body).toBe(201);
    expect(new Set(answers.map((answer) => JSON.parse(answer.body).id)).size).toBe(100);

    const [code] = await exited;
    expect(code, output).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(8000);
    expect(output).toContain('shut down cleanly');
  });
});
