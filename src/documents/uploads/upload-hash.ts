import { createSHA256, type IHasher } from 'hash-wasm';

/**
 * The format of a saved state: hash-wasm's own, which only a compatible
 * build reads back. The dependency is pinned; an instance that meets a state
 * of another format cannot continue that upload.
 */
export const HASH_FORMAT = 'hash-wasm-4-sha256';

/**
 * The SHA-256 of an upload's bytes so far, as a state another process can
 * continue from: hash-wasm's SHA-256, whose state (116 bytes) is saved with
 * every step of an upload that is recorded. It costs about seven times the
 * CPU of Node's own SHA-256 (which cannot save its state), so it is used
 * only here; a request's own digest (Upload-Checksum, Content-Digest) and
 * every one-request create use Node's.
 *
 * A saved state holds up to 63 bytes of content (the partial block): it is
 * stored where the content is, encrypted alike.
 */
export class UploadHash {
  private readonly hasher: IHasher;

  private constructor(hasher: IHasher) {
    this.hasher = hasher;
  }

  static async start(): Promise<UploadHash> {
    const hasher = await createSHA256();
    hasher.init();
    return new UploadHash(hasher);
  }

  /** Undefined when the state is of another format (another build of hash-wasm). */
  static async resume(format: string, state: Uint8Array): Promise<UploadHash | undefined> {
    if (format !== HASH_FORMAT) return undefined;
    const hasher = await createSHA256();
    try {
      hasher.load(state);
    } catch {
      return undefined;
    }
    return new UploadHash(hasher);
  }

  update(bytes: Uint8Array): void {
    this.hasher.update(bytes);
  }

  save(): Uint8Array {
    return this.hasher.save();
  }

  /** The hex digest; the hash takes no more bytes after it. */
  hex(): string {
    return this.hasher.digest('hex');
  }
}
