import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { inject } from 'vitest';
import { OtlpReceiver } from '../support/otlp-receiver.ts';
import { startProcess, until, type Entry, type RunningProcess } from '../support/processes.ts';

// Every process of src/processes/ starts through the one runtime
// (runtime.ts): traced when an endpoint is configured, one start line of the
// same shape, and SIGTERM ends it cleanly with exit 0.

const PROCESSES = new URL('../../src/processes/', import.meta.url);
const longRunning: Entry[] = ['api', 'relay', 'order-consumer', 'content-sweeper', 'invalidations'];
/** The name each gives the runtime: its log lines' `process`, its spans' service docsvc-<name>. */
const nameOf = (entry: Entry) => (entry === 'order-consumer' ? 'consumer' : entry);

let receiver: OtlpReceiver;
const otel = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' });

beforeAll(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
});
afterAll(() => receiver?.stop());

describe('the processes', () => {
  it('are the files of src/processes that call runProcess, and this test starts each', () => {
    const entries = readdirSync(PROCESSES).filter((file) => /^\s*await runProcess\(/m.test(readFileSync(new URL(file, PROCESSES), 'utf8')));
    expect(entries.map((file) => file.replace(/\.ts$/, '')).sort()).toEqual([...longRunning, 'bootstrap'].sort());
  });

  describe.each(longRunning)('%s', (entry) => {
    let running: RunningProcess;
    const name = nameOf(entry);
    afterAll(() => running?.stop());

    it('starts traced, logs its start like every other, and exits 0 on SIGTERM', async () => {
      running = await startProcess(entry, otel());
      const started = await until(
        async () => running.logs().find((line) => line.msg === `${name} started`),
        30_000,
        () => `the start line of ${entry}:\n${running.output()}`,
      );
      expect(started).toMatchObject({ process: name, tracing: `docsvc-${name}`, level: 30 });

      const exited = once(running.child, 'exit');
      running.child.kill('SIGTERM');
      const [code] = await exited;
      expect(code, running.output()).toBe(0);
      // By the time each line carries: two lines a millisecond apart can reach the pipe in either order.
      const at = (msg: string) => running.logs().find((line) => line.msg === msg)?.time;
      expect(at('shutting down'), running.output()).toEqual(expect.any(Number));
      expect(at('shut down cleanly'), running.output()).toBeGreaterThanOrEqual(at('shutting down') as number);
      expect(running.logs().every((line) => line.process === name)).toBe(true);
      // Flushed on the way out at the latest.
      expect(receiver.spans.filter((span) => span.service === `docsvc-${name}` && span.name === `${name} start`)).toHaveLength(1);
    });
  });

  it('bootstrap runs once, traced: its AWS calls are spans of its run', async () => {
    let output = '';
    const child = spawn(process.execPath, [new URL('bootstrap.ts', PROCESSES).pathname], {
      env: { ...process.env, ...inject('stackEnv'), LOG_LEVEL: 'info', ...otel() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const [code] = await once(child, 'exit');
    expect(code, output).toBe(0);
    const lines = output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ msg: 'bootstrap started', process: 'bootstrap', tracing: 'docsvc-bootstrap' });
    expect(lines.at(-1)).toMatchObject({ msg: 'resources ready', process: 'bootstrap' });
    const [run] = receiver.spans.filter((span) => span.service === 'docsvc-bootstrap' && span.name === 'bootstrap run');
    expect(run).toBeDefined();
    const calls = receiver.spans.filter((span) => span.traceId === run!.traceId && span.spanId !== run!.spanId);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((span) => span.service === 'docsvc-bootstrap')).toBe(true);
  });
});
