import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { testApp } from '../support/app.ts';
import { DEAD_ENDPOINT, isolatedStack, json, newOrder, waitFor, type IsolatedStack } from './support.ts';

// The relay and the consumer as `make dev` starts them (`node src/processes/relay.ts`,
// `node src/processes/order-consumer.ts`), on a stack of their own: the API cannot reach SNS,
// so only the relay process can deliver; SIGTERM stops both cleanly, the
// consumer in the middle of a 20 s long poll.

type Running = { child: ChildProcess; port: number; output: () => string };

let s: IsolatedStack;
let api: FastifyInstance;
let relay: Running;
let consumer: Running;

async function start(entry: string, env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [new URL(`../../src/processes/${entry}.ts`, import.meta.url).pathname], {
    env: { ...process.env, ...inject('stackEnv'), ...env, METRICS_PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, port, output: () => output };
}

async function get(running: Running, path: string) {
  const response = await fetch(`http://127.0.0.1:${running.port}${path}`);
  return { status: response.status, text: await response.text() };
}

beforeAll(async () => {
  s = await isolatedStack();
  const names = Object.fromEntries(Object.entries(s.names).map(([key, value]) => [key, String(value)]));
  [relay, consumer] = await Promise.all([
    start('relay', { ...names, RELAY_GRACE_MS: '0', RELAY_INTERVAL_MS: '100' }),
    start('order-consumer', { ...names, CONSUMER_WAIT_SECONDS: '20' }),
  ]);
  api = await testApp({ config: { ...s.names, AWS_ENDPOINT_URL_SNS: DEAD_ENDPOINT } });
  for (const running of [relay, consumer]) {
    await waitFor(
      () => get(running, '/health/ready').then((r) => r.status === 200, () => false),
      15_000,
      `readiness of a process:\n${running.output()}`,
    );
  }
});

afterAll(async () => {
  for (const running of [relay, consumer]) if (running?.child.exitCode === null) running.child.kill('SIGKILL');
  await api?.close();
  s?.close();
});

describe('the relay and consumer processes', () => {
  it('deliver what the API could not publish, and report it on their own /metrics', async () => {
    const orders = await Promise.all(
      Array.from({ length: 5 }, async () => (await api.inject(json(newOrder(1)))).json() as { orderId: string }),
    );
    await waitFor(
      async () => (await Promise.all(orders.map((order) => s.appliedOrder('public', order.orderId)))).every(Boolean),
      15_000,
      `the consumer's records:\n${relay.output()}\n${consumer.output()}`,
    );
    for (const order of orders) {
      expect((await api.inject({ method: 'GET', url: `/orders/${order.orderId}` })).json().event.status).toBe('PUBLISHED');
    }
    expect(await s.appliedRecords()).toHaveLength(5);

    const relayMetrics = await get(relay, '/metrics');
    expect(relayMetrics.text).toMatch(/^outbox_relay_events_total\{outbox="orders",result="published"\} 5$/m);
    expect(relayMetrics.text).toMatch(/^outbox_pending_events\{outbox="orders"\} \d+$/m);
    expect(relayMetrics.text).toMatch(/^outbox_oldest_pending_age_seconds\{outbox="orders"\} [\d.]+$/m);
    // The relay publishes document events too, and reports their outbox.
    expect(relayMetrics.text).toMatch(/^outbox_pending_events\{outbox="documents"\} \d+$/m);
    expect(relayMetrics.text).toMatch(/^process_cpu_seconds_total /m);
    const consumerMetrics = await get(consumer, '/metrics');
    expect(consumerMetrics.text).toMatch(/^order_events_consumed_total\{result="applied"\} 5$/m);
    expect(consumerMetrics.text).toMatch(/^order_events_dead_letters 0$/m);
    expect((await get(consumer, '/health/live')).status).toBe(200);
  });

  it('answer on their ports as the API does: problem+json errors, X-Request-Id, nosniff and the CSP on every answer', async () => {
    const raw = (port: number, request: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        let text = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('error', () => {});
        socket.on('close', () => resolve(text));
      });
    for (const running of [relay, consumer]) {
      const base = `http://127.0.0.1:${running.port}`;
      const answers = await Promise.all([
        fetch(`${base}/health/live`),
        fetch(`${base}/health/ready`),
        fetch(`${base}/metrics`),
        fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'ops-1' } }),
        fetch(`${base}/metrics`, { method: 'POST' }),
      ]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 404, 405]);
      for (const answer of answers) {
        expect(answer.headers.get('x-content-type-options'), answer.url).toBe('nosniff');
        expect(answer.headers.get('content-security-policy'), answer.url).toBe("default-src 'none'; frame-ancestors 'none'; sandbox");
        expect(answer.headers.get('x-request-id'), answer.url).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
      }
      const [, , , notFound, wrongMethod] = answers;
      expect(notFound!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await notFound!.json()).toMatchObject({ status: 404, code: 'ROUTE_NOT_FOUND', requestId: 'ops-1' });
      expect(wrongMethod!.headers.get('allow')).toBe('GET, HEAD');
      expect(await wrongMethod!.json()).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });

      // What Fastify and Node refuse before any route: a URL that does not decode, a malformed request.
      for (const request of ['GET /health/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'NOT HTTP\r\n\r\n']) {
        const text = await raw(running.port, request);
        expect(text, request).toMatch(/^HTTP\/1\.1 400 /);
        expect(text).toMatch(/\r\ncontent-type: application\/problem\+json/i);
        expect(text).toMatch(/\r\nx-content-type-options: nosniff\r\n/i);
        expect(text).toMatch(/\r\ncontent-security-policy: default-src 'none'/i);
        expect(text).toContain('"code":"BAD_REQUEST"');
      }
    }
  });

  it('stop on SIGTERM within a second or two and exit 0, the consumer in the middle of its long poll', async () => {
    const exits = [relay, consumer].map((running) => once(running.child, 'exit'));
    const signalledAt = Date.now();
    relay.child.kill('SIGTERM');
    consumer.child.kill('SIGTERM');
    const codes = (await Promise.all(exits)).map(([code]) => code);
    expect(codes, `${relay.output()}\n${consumer.output()}`).toEqual([0, 0]);
    expect(Date.now() - signalledAt).toBeLessThan(3000);
    expect(relay.output()).toContain('shut down cleanly');
    expect(consumer.output()).toContain('shut down cleanly');
  });
});
