import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
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
