import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { stopChild, type LocalStack } from '../src/local/emulators.ts';
import type { LoadAnswer, LoadResult } from './load.ts';
import type { LoadSpec } from './scenarios.ts';
import { here, log, root } from './settings.ts';

// The processes of a run: every child is known by pid, watched by the reaper
// (bench/reaper.ts), and stopped by cleanup(), which runs once whatever ends
// the run (its end, an error, Ctrl-C, the deadline).

const children = new Set<ChildProcess>();
let stack: LocalStack | undefined;
let reaper: ChildProcess | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

function tellReaper(message: { watch?: number; forget?: number; clear?: true }) {
  if (reaper?.connected) reaper.send(message);
}

export async function startReaper() {
  reaper = spawn(process.execPath, [`${here}reaper.ts`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(reaper, 'message');
}

/** A process this one did not spawn itself (redis-server, started by the stack): the reaper kills it too. */
export function watchPid(pid: number) {
  tellReaper({ watch: pid });
}

/** The local stack is stopped by cleanup(), after the children. */
export function ownStack(started: LocalStack) {
  stack = started;
}

/** Starts `node <args>` with an IPC channel; the reaper kills it if this process dies first. */
export function startNode(args: string[], env: NodeJS.ProcessEnv, output: 'pipe' | 'inherit'): ChildProcess {
  return ownChild(spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', output, output, 'ipc'] }));
}

/** A child of the run (a node process, a profiler): stopped by cleanup(), and by the reaper if this process dies first. */
export function ownChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => {
    children.delete(child);
    if (child.pid) tellReaper({ forget: child.pid });
  });
  if (child.pid) tellReaper({ watch: child.pid });
  return child;
}

/** SIGTERM, then SIGKILL after 3 s: a child the run no longer needs. */
export const stopNode = (child: ChildProcess) => stopChild(child, 3000);

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...children].map((child) => stopNode(child)));
    await stack?.stop();
    tellReaper({ clear: true });
    reaper?.disconnect();
  })();
  return cleaning;
}

/** True once cleanup() has begun: children exiting then are expected. */
export const isCleaningUp = () => cleaning !== undefined;

/** True after Ctrl-C or SIGTERM: the run fails on its killed children, with nothing to report. */
export const wasInterrupted = () => interrupted;

/** Ctrl-C, SIGTERM and the deadline stop every child; so does an exit without cleanup() (synchronous kills). */
export function installStopHandlers(deadlineSeconds: number) {
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      log(`${signal}: stopping`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const deadline = setTimeout(() => {
    log(`still running after ${deadlineSeconds} s (BENCH_DEADLINE_S): giving up`);
    void cleanup().finally(() => process.exit(1));
  }, deadlineSeconds * 1000);
  deadline.unref();
}

export async function waitForHttp(name: string, child: ChildProcess, url: string, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.signalCode ?? child.exitCode}) before answering ${url}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) throw new Error(`${name} does not answer ${url} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Direct children of this process with this command name. */
export function childPidsNamed(name: string): number[] {
  const found: number[] = [];
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let list = '';
    try {
      list = readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const pid of list.trim().split(/\s+/).filter(Boolean).map(Number)) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name) found.push(pid);
      } catch {
        // Gone.
      }
    }
  }
  return found;
}

export type ApiLog = { lines: number; messages: Map<string, number>; examples: Map<string, string>; tail: string[] };

/** The API's own log lines (LOG_LEVEL=warn): counted, a few kept for the report. */
export function collectLog(child: ChildProcess): ApiLog {
  const seen: ApiLog = { lines: 0, messages: new Map(), examples: new Map(), tail: [] };
  let rest = '';
  const take = (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      seen.lines++;
      seen.tail.push(line.slice(0, 600));
      if (seen.tail.length > 15) seen.tail.shift();
      let message = line.slice(0, 200);
      try {
        const parsed = JSON.parse(line) as { msg?: string; level?: number };
        message = `${parsed.level ?? '?'} ${parsed.msg ?? line.slice(0, 200)}`;
      } catch {
        // Not JSON (a crash trace): keep the raw line.
      }
      seen.messages.set(message, (seen.messages.get(message) ?? 0) + 1);
      if (!seen.examples.has(message)) seen.examples.set(message, line.slice(0, 600));
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return seen;
}

/** The load generator child (bench/load.ts), one phase at a time over IPC. */
export class LoadGenerator {
  private readonly child: ChildProcess;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (result: LoadResult) => void; reject: (error: Error) => void }>();

  private readonly abort: Promise<never>;

  /** `abort` rejects every phase at once (the API died). */
  constructor(child: ChildProcess, abort: Promise<never>) {
    this.child = child;
    this.abort = abort;
    child.on('message', (answer: LoadAnswer) => {
      const waiting = this.pending.get(answer.id);
      if (!waiting) return;
      this.pending.delete(answer.id);
      if (answer.result) waiting.resolve(answer.result);
      else waiting.reject(new Error(`load generator: ${answer.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiting of this.pending.values()) waiting.reject(new Error(`load generator exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  run(spec: LoadSpec): Promise<LoadResult> {
    const id = this.next++;
    const answer = new Promise<LoadResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, spec });
    });
    return Promise.race([answer, this.abort]);
  }
}
