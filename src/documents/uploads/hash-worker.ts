import { parentPort } from 'node:worker_threads';
import { createSHA256, type IHasher } from 'hash-wasm';

// The thread that hashes resumable uploads (upload-hash.ts): sessions of
// hash-wasm's SHA-256, fed ranges of part buffers the main thread shares
// with it, in the order it posts them. Only save and digest answer.

export type HashRequest =
  | { op: 'open'; id: number; state?: Uint8Array }
  | { op: 'update'; id: number; buffer: SharedArrayBuffer; start: number; end: number }
  | { op: 'save' | 'digest' | 'settle'; id: number; ask: number }
  | { op: 'close'; id: number };

export type HashAnswer = { ask: number; state?: Uint8Array; hex?: string; error?: string };

const sessions = new Map<number, IHasher | Promise<IHasher>>();
const port = parentPort!;

async function hasher(id: number): Promise<IHasher> {
  const session = sessions.get(id);
  if (!session) throw new Error(`no hash session ${id}`);
  return session;
}

/** Messages are handled strictly in order: each waits for the one before. */
let queue: Promise<void> = Promise.resolve();

port.on('message', (request: HashRequest) => {
  queue = queue.then(() => handle(request)).catch(() => {});
});

async function handle(request: HashRequest): Promise<void> {
  switch (request.op) {
    case 'open': {
      // A state that does not load fails the session's first save.
      const opening = createSHA256().then((created) => (request.state ? created.load(request.state) : created.init()));
      sessions.set(request.id, opening);
      await opening.then((ready) => sessions.set(request.id, ready), () => {});
      return;
    }
    case 'update':
      (await hasher(request.id)).update(new Uint8Array(request.buffer, request.start, request.end - request.start));
      return;
    case 'close':
      sessions.delete(request.id);
      return;
    case 'settle':
      port.postMessage({ ask: request.ask } satisfies HashAnswer);
      return;
    case 'save':
    case 'digest':
      try {
        const session = await hasher(request.id);
        const answer: HashAnswer = request.op === 'save' ? { ask: request.ask, state: session.save() } : { ask: request.ask, hex: session.digest('hex') };
        port.postMessage(answer);
      } catch (error) {
        port.postMessage({ ask: request.ask, error: error instanceof Error ? error.message : String(error) } satisfies HashAnswer);
      }
  }
}
