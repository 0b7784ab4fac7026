import { mkdirSync, writeFileSync } from 'node:fs';

// BENCH_API_PROFILE=<dir>: CPU profiles of the API over the measured slices
// of get-hot only (not its start, warm-up or the ceiling's slices, as
// --cpu-prof would give), and of the ceiling's process over those of
// ceiling-same-response, taken through each process's inspector (started
// with --inspect on a port of its own). One .cpuprofile per slice, named by
// row; `node bench/profile-summary.ts <dir> [top] [row]` adds them up.
// BENCH_API_PROFILE_HEAP=1: allocation samples instead (HeapProfiler's
// sampling, every 1 KiB allocated on average, collected objects included),
// one .heapprofile per slice; `node bench/heap-summary.ts <dir> [top] [row]`.

/** Profiles one process over each measured slice of a row (start before it, stop after it). */
export type SliceProfiler = { start(): Promise<unknown>; stop(name: string): Promise<void>; close(): void };

type Pending = { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void };

export class InspectorProfiler implements SliceProfiler {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private taken = 0;
  private readonly socket: WebSocket;
  private readonly dir: string;
  private readonly heap: boolean;

  private constructor(socket: WebSocket, dir: string, heap: boolean) {
    this.socket = socket;
    this.dir = dir;
    this.heap = heap;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result ?? {});
    });
  }

  /** Connects to the inspector listening on `port` (the API's --inspect). */
  static async connect(port: number, dir: string, heap = false): Promise<InspectorProfiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`no inspector on port ${port}`)), { once: true });
    });
    mkdirSync(dir, { recursive: true });
    const profiler = new InspectorProfiler(socket, dir, heap);
    if (heap) {
      await profiler.send('HeapProfiler.enable');
      return profiler;
    }
    await profiler.send('Profiler.enable');
    // 0.5 ms: about 4,000 samples of a busy core per 2 s slice.
    await profiler.send('Profiler.setSamplingInterval', { interval: 500 });
    return profiler;
  }

  private send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  start(): Promise<unknown> {
    if (this.heap) return this.send('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return this.send('Profiler.start');
  }

  /** Stops the profile begun by start() and writes it as `<name>-<n>.cpuprofile`. */
  async stop(name: string): Promise<void> {
    const { profile } = await this.send(this.heap ? 'HeapProfiler.stopSampling' : 'Profiler.stop');
    writeFileSync(`${this.dir}/${name}-${++this.taken}.${this.heap ? 'heapprofile' : 'cpuprofile'}`, JSON.stringify(profile));
  }

  close() {
    this.socket.close();
  }
}
