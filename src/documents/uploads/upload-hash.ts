import { Worker } from 'node:worker_threads';
import { createSHA256 } from 'hash-wasm';
import type { HashAnswer, HashRequest } from './hash-worker.ts';

/**
 * The format of a saved state: hash-wasm's own, which only a compatible
 * build reads back. The dependency is pinned; an instance that meets a state
 * of another format cannot continue that upload.
 */
export const HASH_FORMAT = 'hash-wasm-4-sha256';

/** The saved state of the SHA-256 of no bytes: where every upload starts. */
export async function initialHashState(): Promise<Uint8Array> {
  return (await createSHA256()).init().save();
}

type Pending = { resolve(answer: HashAnswer): void; reject(error: Error): void };

/**
 * The SHA-256 of resumable uploads, as a state another process can continue
 * from: hash-wasm's SHA-256, whose state (116 bytes) is saved with every
 * step of an upload that is recorded. Node's own SHA-256 cannot save its
 * state; hash-wasm's costs about seven times its CPU (bench/README.md,
 * "Resumable uploads"), so it runs on a thread of its own, beside the
 * event loop that moves the bytes: it reads the part buffers where the bytes
 * already are (they are SharedArrayBuffers), and no byte is copied for it.
 * A request's own digest (Upload-Checksum, Content-Digest) and every
 * one-request create use Node's.
 *
 * A saved state holds up to 63 bytes of content (the partial block): it is
 * stored where the content is, encrypted alike.
 */
export class HashThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextSession = 1;
  private nextAsk = 1;

  private thread(): Worker {
    if (this.worker) return this.worker;
    const file = new URL(`./hash-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
    const worker = new Worker(file);
    worker.unref();
    worker.on('message', (answer: HashAnswer) => {
      const waiting = this.pending.get(answer.ask);
      this.pending.delete(answer.ask);
      if (answer.error) waiting?.reject(new Error(answer.error));
      else waiting?.resolve(answer);
    });
    const fail = (error: Error) => {
      this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the hash thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  post(request: HashRequest): void {
    this.thread().postMessage(request);
  }

  ask(request: Extract<HashRequest, { ask: number }>['op'], id: number): Promise<HashAnswer> {
    const ask = this.nextAsk++;
    const answered = new Promise<HashAnswer>((resolve, reject) => this.pending.set(ask, { resolve, reject }));
    this.post({ op: request, id, ask });
    return answered;
  }

  /**
   * A hash continuing from a saved state; undefined when the state is of
   * another format or does not load (another build of hash-wasm).
   */
  async resume(format: string, state: Uint8Array): Promise<UploadHash | undefined> {
    if (format !== HASH_FORMAT) return undefined;
    const id = this.nextSession++;
    this.post({ op: 'open', id, state });
    const hash = new UploadHash(this, id);
    return hash.save().then(
      () => hash,
      () => {
        hash.close();
        return undefined;
      },
    );
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

/** One upload's SHA-256 on the hash thread: ranges of shared buffers, hashed in the order given. */
export class UploadHash {
  private readonly thread: HashThread;
  private readonly id: number;

  constructor(thread: HashThread, id: number) {
    this.thread = thread;
    this.id = id;
  }

  /** Hashes `buffer[start, end)`; the buffer must not change until a later save() or hex() answered. */
  update(buffer: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (!(buffer.buffer instanceof SharedArrayBuffer)) throw new TypeError('the hash thread reads shared buffers only');
    this.thread.post({ op: 'update', id: this.id, buffer: buffer.buffer, start: buffer.byteOffset + start, end: buffer.byteOffset + end });
  }

  /** The state after every range given so far. */
  async save(): Promise<Uint8Array> {
    return (await this.thread.ask('save', this.id)).state!;
  }

  /** The hex digest of every range given so far; the hash takes no more after it. */
  async hex(): Promise<string> {
    return (await this.thread.ask('digest', this.id)).hex!;
  }

  /** Once every range given so far is read (the buffers may be reused), whatever the hash's state. */
  async settled(): Promise<void> {
    await this.thread.ask('settle', this.id).catch(() => {});
  }

  close(): void {
    this.thread.post({ op: 'close', id: this.id });
  }
}
