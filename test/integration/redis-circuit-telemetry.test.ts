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
  api = await startProcess('server.ts', { REDIS_URL: `redis://127.0.0.1:${redis.port}` });
  await ready(api);
  await until(async () => (await circuitGauge()) === 0, 10_000, () => `the circuit to close:\n${api.output()}`);
});

afterAll(async () => {
  await api?.stop();
  await redis?.stop();
});

describe('the Redis circuit of the API process', () => {
  it('is 0 while Redis answers, 1 with one warn line when Redis stops, 0 with one info line when it is back', async () => {
    expect(transitions()).toEqual([]);

    await redis.stop();
    // ioredis sees the connection close at once; the bound is reconnect back-off, not the test's.
    await until(async () => (await circuitGauge()) === 1, 10_000, () => `the gauge at 1:\n${api.output()}`);
    const opened = await until(async () => transitions()[0], 5000, () => 'the open line');
    expect(opened).toMatchObject({ level: 40, msg: 'redis circuit open: skipping Redis' });
    expect(String(opened.reason)).toMatch(/^connection /);

    await redis.start();
    // Reconnect attempts back off up to 2 s: closed again within that plus a margin.
    await until(async () => (await circuitGauge()) === 0, 10_000, () => `the gauge at 0:\n${api.output()}`);
    await until(async () => transitions().length === 2, 5000, () => 'the closed line');
    expect(transitions().map((line) => [line.level, line.msg])).toEqual([
      [40, 'redis circuit open: skipping Redis'],
      [30, 'redis circuit closed: using Redis again'],
    ]);
  });
});
