import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Retry } from '@smithy/core/retry';
import { RUNTIME_FLAGS } from '../../src/processes/v8-flags.ts';

// Helpers of the fault tests: latency statistics, unhandled-rejection
// watching, and the built server as a child process.

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type Stats = { count: number; p50: number; p95: number; p99: number; max: number };

/** Nearest-rank percentiles, in ms, rounded to 0.1 ms. */
export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => {
    if (sorted.length === 0) return Number.NaN;
    const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
    return Math.round(value * 10) / 10;
  };
  return { count: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

/** Records every unhandled rejection (and uncaught exception) of this process until stopped. */
export function watchUnhandled(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onRejection = (reason: unknown) => errors.push(reason);
  const onException = (error: unknown) => errors.push(error);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);
  return {
    errors,
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtExceptionMonitor', onException);
    },
  };
}

/**
 * How late this process's timers fired while it ran: the event loop's worst
 * delay, in ms. A deadline fires no earlier than it is due and no later than
 * that; so a bound on a deadline adds what this measured in the same run,
 * and a busy machine moves the bound with it instead of failing the test.
 */
export function loopLateness(): { maxMs(): number; stop(): void } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  // The histogram counts the 10 ms resolution itself in each sample.
  return { maxMs: () => Math.max(0, histogram.max / 1e6 - 10), stop: () => histogram.disable() };
}

/**
 * DynamoDB outage tests shorten the AWS deadlines so that a write's is small;
 * one call then takes at most its attempts, each up to the request timeout,
 * and the back-offs between them (the SDK's full jitter, 50 ms × 2^n).
 */
export const SHORT_AWS_DEADLINES = { AWS_REQUEST_TIMEOUT_MS: 250, AWS_CONNECT_TIMEOUT_MS: 250, AWS_MAX_ATTEMPTS: 3 };
let backoffMs = 0;
for (let retry = 0; retry < SHORT_AWS_DEADLINES.AWS_MAX_ATTEMPTS - 1; retry++) backoffMs += Retry.delay() * 2 ** retry;
export const CALL_DEADLINE_MS = SHORT_AWS_DEADLINES.AWS_MAX_ATTEMPTS * SHORT_AWS_DEADLINES.AWS_REQUEST_TIMEOUT_MS + backoffMs;

/** The slack of a bound on such a call: 250 ms, plus the worst lag measured in the run for each of its timers (a timeout per attempt, a back-off between two). */
export const callSlackMs = (lagMs: number) => 250 + (2 * SHORT_AWS_DEADLINES.AWS_MAX_ATTEMPTS - 1) * lagMs;

/** Prints a measurement line the report (and a reader of the CI log) can quote. */
export function report(what: string, value: unknown): void {
  console.log(`[faults] ${what}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}

/** The build of `make build`; FAULTS_DIST (a directory inside the repository) points elsewhere, e.g. at a fresher build. */
const DIST = process.env.FAULTS_DIST ? new URL(`../../${process.env.FAULTS_DIST.replace(/\/?$/, '/')}`, import.meta.url) : new URL('../../dist/', import.meta.url);
export const SERVER_ENTRY = new URL('processes/api.js', DIST).pathname;

export function assertBuilt(): void {
  if (!existsSync(SERVER_ENTRY)) throw new Error('run `make build` first (make test does): dist/processes/api.js is missing');
}

export type ServerProcess = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** Starts `node dist/processes/api.js` with the given environment; resolves once /health/ready answers 200. */
export async function startServer(env: Record<string, string>, port: number, timeoutMs = 45_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, SERVER_ENTRY], {
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer) => {
    text += chunk;
    if (text.length > 200_000) text = text.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const server = { child, output: () => text, exited };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited before ready:\n${text}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready after ${timeoutMs} ms:\n${text}`);
    }
    await sleep(20);
  }
}

/** SIGKILL, and wait for the exit. */
export async function kill(server: ServerProcess): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  await server.exited;
}
