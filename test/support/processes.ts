import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { freePort, stopChild } from '../../src/local/emulators.ts';

/**
 * One of the service's processes as `make dev` starts it (`node src/processes/<entry>.ts`),
 * on the shared local stack plus `env`, listening on a free port of its own:
 * PORT for the API, METRICS_PORT for the background processes.
 */
export type RunningProcess = {
  child: ChildProcess;
  port: number;
  url: (path: string) => string;
  /** Everything it wrote so far, stdout and stderr. */
  output: () => string;
  /** Its JSON log lines so far. */
  logs: () => Record<string, unknown>[];
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop: (graceMs?: number) => Promise<void>;
};

/** A process of src/processes/. */
export type Entry = 'api' | 'relay' | 'order-consumer' | 'content-sweeper' | 'invalidations';

export async function startProcess(entry: Entry, env: Record<string, string> = {}): Promise<RunningProcess> {
  const port = await freePort();
  const portVariable = entry === 'api' ? 'PORT' : 'METRICS_PORT';
  let output = '';
  const child = spawn(process.execPath, [new URL(`../../src/processes/${entry}.ts`, import.meta.url).pathname], {
    env: { ...process.env, ...inject('stackEnv'), LOG_LEVEL: 'info', ...env, [portVariable]: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return {
    child,
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    output: () => output,
    logs: () =>
      output.split('\n').flatMap((line) => {
        try {
          return line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      }),
    stop: (graceMs = 5000) => stopChild(child, graceMs),
  };
}

/** Polls until the probe holds; `what` names it in the timeout error. */
export async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits for /health/ready (or another probe) to answer 200. */
export function ready(running: RunningProcess, timeoutMs = 20_000, probe = '/health/ready'): Promise<true> {
  return until(
    async () => (await fetch(running.url(probe))).status === 200 || undefined,
    timeoutMs,
    () => `readiness of ${running.url('')}:\n${running.output()}`,
  );
}

/** The samples of a Prometheus text exposition, by metric name with labels: `name{a="b"}` → value. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** The metric names a /metrics answer declares (its # TYPE lines), histogram and summary series included. */
export function metricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match;
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}
