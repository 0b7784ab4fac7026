import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, renameSync } from 'node:fs';
import { ownChild } from './processes.ts';
import type { SliceProfiler } from './profiler.ts';

// BENCH_API_PROFILE=<dir> with BENCH_API_PROFILE_PERF=1: the kernel's CPU
// samples (`perf record -g`) of the same processes over the same slices as
// the inspector's profiles, one <row>-<n>.perf.data per slice. V8's sampler
// counts wall-clock time, so time a process waits for the CPU lands in the
// frame it was in (mostly `writev`, which wakes the load generator); perf
// counts only the time it ran, kernel included. The processes start with
// --perf-basic-prof so that JavaScript frames have names. Summed up by
// `node bench/perf-summary.ts <dir> <results.json>`.

export const PERF_FREQUENCY_HZ = 1999;

export class PerfProfiler implements SliceProfiler {
  private recording: ChildProcess | undefined;
  private taken = 0;
  private readonly pid: number;
  private readonly dir: string;

  constructor(pid: number, dir: string) {
    this.pid = pid;
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  async start(): Promise<void> {
    const file = `${this.dir}/.recording-${this.pid}.perf.data`;
    // The run's own child: stopped with the others should the run die mid-slice.
    const recording = ownChild(spawn('perf', ['record', '-q', '-F', String(PERF_FREQUENCY_HZ), '-g', '-o', file, '-p', String(this.pid)], { stdio: 'inherit' }));
    await once(recording, 'spawn');
    this.recording = recording;
  }

  /** Stops the recording begun by start() and keeps it as `<name>-<n>.perf.data`. */
  async stop(name: string): Promise<void> {
    const recording = this.recording;
    if (!recording) return;
    this.recording = undefined;
    const exited = once(recording, 'exit');
    recording.kill('SIGINT');
    // perf writes its file, then ends by the same signal (it raises it again).
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    if (code !== 0 && signal !== 'SIGINT') throw new Error(`perf record of pid ${this.pid} ended with ${signal ?? code} (is linux-perf installed? apt-get install -y linux-perf)`);
    renameSync(`${this.dir}/.recording-${this.pid}.perf.data`, `${this.dir}/${name}-${++this.taken}.perf.data`);
  }

  close() {
    this.recording?.kill('SIGINT');
  }
}
