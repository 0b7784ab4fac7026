import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, freePort } from '../../src/local/emulators.ts';
import { parseExposition, ready, startProcess, until, type RunningProcess } from '../support/processes.ts';

// The API process with a Redis of this file's own: stopping it shows the
// circuit's state in /metrics and one log line per transition.
let redis: RedisServer;
let api: RunningProcess;

const circuitGauge = async () =>
  parseExposition(await (await fetch(api.url('/metrics'))).text()).get('redis_circuit_open');
const transitions = () => api.logs().filter((line) => String(line.msg).startsWith('redis circuit'));

beforeAll(async () => {
  redis = new RedisServer(await freePort());
  await redis.start();
  api = await startProcess('api', { REDIS_URL: `redis://127.0.0.1:${redis.port}` });
  await ready(api);
  await until(async () => (await circuitGauge()) === 0, 10_000, () => `the circuit to close:\n${api.output()}`);
});

afterAll(async () => {
  await api?.stop();
  await redis?.stop();
});

describe('the Redis circuit of the API process', () => {
  it('is 0 while Redis answers, 1 with one warn line when Redis stops, 0 with one info line when it is back', async () => {
    // On a busy machine three slow commands in a row may already have opened and closed it once.
    const before = transitions().length;
    const since = () => transitions().slice(before);

    await redis.stop();
    // ioredis sees the connection close at once; the bound is reconnect back-off, not the test's.
    await until(async () => (await circuitGauge()) === 1, 10_000, () => `the gauge at 1:\n${api.output()}`);
    const opened = await until(async () => since()[0], 5000, () => 'the open line');
    expect(opened).toMatchObject({ level: 40, msg: 'redis circuit open: skipping Redis' });
    expect(String(opened.reason)).toMatch(/^connection /);

    await redis.start();
    // Reconnect attempts back off up to 2 s: closed again within that plus a margin.
    await until(async () => (await circuitGauge()) === 0, 10_000, () => `the gauge at 0:\n${api.output()}`);
    await until(async () => since().at(-1)?.level === 30, 5000, () => 'the closed line');
    // One line per transition: open and closed alternate, never twice the same in a row.
    const messages = since().map((line) => line.msg);
    expect(messages.length % 2).toBe(0);
    messages.forEach((message, index) =>
      expect(message).toBe(index % 2 === 0 ? 'redis circuit open: skipping Redis' : 'redis circuit closed: using Redis again'),
    );
  });
});
