import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { RedisCircuit, registerCircuitGauge } from '../../src/adapters/redis.ts';

// A fake connection is enough here: the circuit only reads `status` and
// listens for the connection events ioredis emits when it changes.
class FakeConnection extends EventEmitter {
  status: string;
  constructor(status = 'ready') {
    super();
    this.status = status;
  }
  /** As ioredis does: the status changes, then the event of that name is emitted. */
  become(status: string) {
    this.status = status;
    this.emit(status);
  }
}
const connection = (status = 'ready') => new FakeConnection(status);
const asRedis = (fake: FakeConnection) => fake as unknown as Redis;

function recordingLog() {
  const lines: { level: string; message: string; fields?: unknown }[] = [];
  const write = (level: string) => (fieldsOrMessage: unknown, message?: string) => {
    if (typeof fieldsOrMessage === 'string') lines.push({ level, message: fieldsOrMessage });
    else lines.push({ level, message: message ?? '', fields: fieldsOrMessage });
  };
  return { lines, log: { info: write('info'), warn: write('warn') } };
}

const fail = async () => {
  throw new Error('timeout');
};
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('RedisCircuit', () => {
  it('skips Redis while it is not connected', async () => {
    const circuit = new RedisCircuit(asRedis(connection('reconnecting')));
    let calls = 0;
    expect(await circuit.call(async () => ++calls)).toEqual({ ok: false });
    expect(calls).toBe(0);
  });

  it('opens after consecutive failures, then lets one probe through after the pause', async () => {
    const circuit = new RedisCircuit(asRedis(connection()), { threshold: 2, openMs: 50 });
    await circuit.call(fail);
    await circuit.call(fail);
    let calls = 0;
    expect(await circuit.call(async () => ++calls)).toEqual({ ok: false });
    expect(calls).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await circuit.call(async () => ++calls)).toEqual({ ok: true, value: 1 });
    expect(circuit.isOpen).toBe(false);
  });

  it('lets forced writes through an open circuit', async () => {
    const circuit = new RedisCircuit(asRedis(connection()), { threshold: 1, openMs: 10_000 });
    await circuit.call(fail);
    expect(await circuit.call(async () => 'skipped')).toEqual({ ok: false });
    expect(await circuit.call(async () => 'written', true)).toEqual({ ok: true, value: 'written' });
  });

  it('logs one line when it opens on failures and one when a probe closes it, and the gauge follows', async () => {
    const { lines, log } = recordingLog();
    const circuit = new RedisCircuit(asRedis(connection()), { threshold: 2, openMs: 20, log });
    const registry = new Registry();
    registerCircuitGauge(registry, circuit);
    const gauge = async () => (await registry.getSingleMetric('redis_circuit_open')!.get()).values[0]?.value;

    expect(await gauge()).toBe(0);
    await circuit.call(fail);
    expect(lines).toEqual([]); // one failure is not an open circuit
    await circuit.call(fail);
    await circuit.call(fail); // skipped: no second line
    expect(lines).toEqual([
      { level: 'warn', message: 'redis circuit open: skipping Redis', fields: { reason: '2 failures in a row', retryInMs: 20 } },
    ]);
    expect(await gauge()).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, 30));
    await circuit.call(fail); // the probe fails: still open, nothing new to say
    expect(lines).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await circuit.call(async () => 'ok');
    expect(lines.slice(1)).toEqual([{ level: 'info', message: 'redis circuit closed: using Redis again' }]);
    expect(await gauge()).toBe(0);
  });

  it('opens when the connection drops and closes when it is ready again, without any call', async () => {
    const { lines, log } = recordingLog();
    const fake = connection();
    const circuit = new RedisCircuit(asRedis(fake), { log });
    fake.become('close');
    fake.status = 'reconnecting'; // what ioredis does right after 'close' when it will reconnect
    await settle();
    expect(circuit.isOpen).toBe(true);
    expect(lines).toEqual([
      { level: 'warn', message: 'redis circuit open: skipping Redis', fields: { reason: 'connection reconnecting', retryInMs: 1000 } },
    ]);
    fake.become('ready');
    await settle();
    expect(lines.slice(1)).toEqual([{ level: 'info', message: 'redis circuit closed: using Redis again' }]);
  });

  it('says nothing when the connection is closed on purpose (shutdown) or first connects', async () => {
    const { lines, log } = recordingLog();
    const fake = connection('connecting');
    new RedisCircuit(asRedis(fake), { log });
    fake.become('ready');
    await settle();
    fake.become('close');
    fake.status = 'end';
    await settle();
    expect(lines).toEqual([]);
  });
});
