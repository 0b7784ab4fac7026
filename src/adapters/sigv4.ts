import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from 'node:crypto';
import type { Checksum, SourceData } from '@smithy/types';
import aws4 from 'aws4';

/** The signing keys kept: one per secret, day, region and service, so a handful in practice. */
const MAX_SIGNING_KEYS = 64;

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/**
 * The SigV4 signing keys of one client, each derived once a day (the chain
 * of HMACs over the date, region and service) and held as a KeyObject.
 *
 * Why not aws4's own cache, which holds the key as a Buffer: Node 24 tells
 * a Buffer key of `createHmac` from a KeyObject or a CryptoKey by throwing
 * and catching twice (`isKeyObject`, `isCryptoKey`), and the two exceptions
 * cost more than the HMAC itself, more so the deeper the stack; a KeyObject
 * passes the first check. `node bench/hmac-keys.ts` measures the difference.
 */
export class SigningKeys {
  private readonly keys = new Map<string, KeyObject>();

  /** How many keys are kept. */
  get size(): number {
    return this.keys.size;
  }

  of(secretAccessKey: string, date: string, region: string, service: string): KeyObject {
    const id = `${secretAccessKey}\n${date}\n${region}\n${service}`;
    let key = this.keys.get(id);
    if (key === undefined) {
      const derived = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
      key = createSecretKey(derived);
      // Keys of past days are never asked for again.
      if (this.keys.size >= MAX_SIGNING_KEYS) this.keys.clear();
      this.keys.set(id, key);
    }
    return key;
  }
}

/** aws4's signer, everything of it but where the signing key comes from. */
class KeyObjectSigner extends aws4.RequestSigner {
  private readonly keys: SigningKeys;

  constructor(request: aws4.Request, credentials: aws4.Credentials, keys: SigningKeys) {
    super(request, credentials);
    this.keys = keys;
  }

  override signature(): string {
    const key = this.keys.of(this.credentials.secretAccessKey ?? '', this.getDate(), this.region, this.service);
    return createHmac('sha256', key).update(this.stringToSign(), 'utf8').digest('hex');
  }
}

/** `aws4.sign`, with the signing key from `keys`: the same headers, for less CPU. */
export function signRequest(request: aws4.Request, credentials: aws4.Credentials, keys: SigningKeys): aws4.Request {
  return new KeyObjectSigner(request, credentials, keys).sign();
}

/** The KeyObjects of HMAC keys given as bytes, for as long as the SDK keeps the bytes. */
const byteKeys = new WeakMap<object, KeyObject>();

function keyOf(secret: SourceData): string | KeyObject {
  if (typeof secret === 'string') return secret;
  let key = byteKeys.get(secret);
  if (key === undefined) {
    const bytes = ArrayBuffer.isView(secret) ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength) : Buffer.from(secret);
    key = createSecretKey(bytes);
    byteKeys.set(secret, key);
  }
  return key;
}

/**
 * SHA-256 and HMAC-SHA-256 for the AWS SDK's clients (their `sha256`
 * option): Node's, as the SDK's own `Sha256` is, and with its behaviour (a
 * hash may go on after a digest, an HMAC may not), except that an HMAC key
 * given as bytes becomes a KeyObject, once per byte array: the SDK signs
 * with one array per day, region and service, and a Buffer key costs the two
 * exceptions `SigningKeys` avoids. A string key goes as it is, UTF-8 both ways.
 */
export class Sha256 implements Checksum {
  readonly digestLength = 32;
  private readonly key: string | KeyObject | undefined;
  private hash: Hash | Hmac;
  private finished = false;

  constructor(secret?: SourceData) {
    this.key = secret ? keyOf(secret) : undefined;
    this.hash = this.create();
  }

  update(chunk: Uint8Array): void {
    if (this.finished) throw new Error('Attempted to update an already finished hash.');
    this.hash.update(chunk);
  }

  digest(): Promise<Uint8Array> {
    const { hash } = this;
    let digest: Buffer;
    // A hash goes on after its digest (a copy is digested); an HMAC ends with it.
    if ('copy' in hash) digest = hash.copy().digest();
    else {
      this.finished = true;
      digest = hash.digest();
    }
    return Promise.resolve(new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength));
  }

  reset(): void {
    this.hash = this.create();
    this.finished = false;
  }

  private create(): Hash | Hmac {
    return this.key === undefined ? createHash('sha256') : createHmac('sha256', this.key);
  }
}
