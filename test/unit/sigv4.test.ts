import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import aws4 from 'aws4';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Sha256 as SdkSha256 } from '@smithy/core/checksum';
import type { Checksum, SourceData } from '@smithy/types';
import { Sha256, SigningKeys, signRequest } from '../../src/adapters/sigv4.ts';

// The lean DynamoDB client signs with aws4 but keeps the signing key as a
// KeyObject: every header must be the one aws4 itself would send.
function request(amzDate: string, region = 'eu-west-1'): aws4.Request {
  return {
    host: `dynamodb.${region}.amazonaws.com`,
    path: '/',
    method: 'POST',
    service: 'dynamodb',
    region,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem', 'X-Amz-Date': amzDate },
    body: JSON.stringify({ TableName: 'orders', Item: { pk: { S: 'tenant#é€' } } }),
  };
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('signRequest', () => {
  it('sends the headers aws4.sign sends, across days, regions, secrets and a session token', () => {
    const keys = new SigningKeys();
    const cases: [aws4.Request, aws4.Credentials][] = [
      [request('20261208T021500Z'), credentials],
      [request('20261208T235959Z'), credentials],
      [request('20261209T000000Z'), credentials],
      [request('20261209T000000Z', 'us-east-1'), credentials],
      [request('20261209T000000Z'), { ...credentials, secretAccessKey: 'another/secret+key' }],
      [request('20261209T000000Z'), { ...credentials, sessionToken: 'session-token' }],
    ];
    const authorizations = new Set<string>();
    for (const [sent, creds] of cases) {
      const ours = signRequest(structuredClone(sent), creds, keys);
      const theirs = aws4.sign(structuredClone(sent), creds);
      expect(ours.headers).toEqual(theirs.headers);
      authorizations.add(String(ours.headers?.Authorization));
    }
    // Every case signs differently: none was answered from another's key.
    expect(authorizations.size).toBe(cases.length);
  });

  it('keeps a bounded number of keys, and signs the same after dropping them', () => {
    const keys = new SigningKeys();
    const first = signRequest(request('20261208T021500Z'), credentials, keys).headers?.Authorization;
    for (let day = 1; day <= 200; day++) signRequest(request(`2027${String(Math.ceil(day / 28)).padStart(2, '0')}${String((day % 28) + 1).padStart(2, '0')}T000000Z`), credentials, keys);
    expect(keys.size).toBeLessThanOrEqual(64);
    expect(keys.size).toBeGreaterThan(0);
    expect(signRequest(request('20261208T021500Z'), credentials, keys).headers?.Authorization).toBe(first);
    expect(first).toBe(aws4.sign(request('20261208T021500Z'), credentials).headers?.Authorization);
  });
});

// The SDK's clients take Sha256 as their `sha256`: it must answer what the SDK's own does.
describe('Sha256 for the AWS SDK', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  async function both(secret: SourceData | undefined, steps: (hash: Checksum) => Promise<Uint8Array[]>) {
    return { ours: await steps(new Sha256(secret)), theirs: await steps(new SdkSha256(secret)) };
  }

  it('hashes and HMACs as the SDK does, keys as strings, byte arrays, views and ArrayBuffers', async () => {
    const key = createHash('sha256').update('day key').digest();
    const secrets: (SourceData | undefined)[] = [undefined, '', 'AWS4wJalrXUtnFEMI/K7MDENG', 'clé €', key, new Uint8Array(key), key.buffer.slice(key.byteOffset, key.byteOffset + key.length), new DataView(key.buffer, key.byteOffset, 16), new Uint8Array(0)];
    for (const secret of secrets) {
      const { ours, theirs } = await both(secret, async (hash) => {
        hash.update(bytes('one '));
        hash.update(bytes('two'));
        return [await hash.digest()];
      });
      expect(Buffer.from(ours[0]!).toString('hex')).toBe(Buffer.from(theirs[0]!).toString('hex'));
    }
  });

  it('goes on after a digest of a hash, refuses to after an HMAC\'s, and starts again on reset', async () => {
    const { ours, theirs } = await both(undefined, async (hash) => {
      hash.update(bytes('a'));
      const first = await hash.digest();
      hash.update(bytes('b'));
      const second = await hash.digest();
      hash.reset();
      hash.update(bytes('b'));
      return [first, second, await hash.digest()];
    });
    expect(ours.map((d) => Buffer.from(d).toString('hex'))).toEqual(theirs.map((d) => Buffer.from(d).toString('hex')));
    for (const Kind of [Sha256, SdkSha256]) {
      const hmac = new Kind(bytes('key'));
      await hmac.digest();
      expect(() => hmac.update(bytes('more'))).toThrow('already finished');
      hmac.reset();
      hmac.update(bytes('more'));
      expect(Buffer.from(await hmac.digest()).toString('hex')).toBe(createHmac('sha256', 'key').update('more').digest('hex'));
    }
  });

  it('signs an S3 link exactly as the SDK does without it', async () => {
    const config = { region: 'eu-west-1', endpoint: 'http://127.0.0.1:4566', forcePathStyle: true, credentials };
    const command = new GetObjectCommand({ Bucket: 'documents', Key: 'public/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', ResponseContentDisposition: 'attachment' });
    const signingDate = new Date('2026-12-08T02:15:00Z');
    let made = 0;
    class Counted extends Sha256 {
      constructor(secret?: SourceData) {
        super(secret);
        made++;
      }
    }
    const ours = await getSignedUrl(new S3Client({ ...config, sha256: Counted }), command, { expiresIn: 300, signingDate });
    const theirs = await getSignedUrl(new S3Client(config), command, { expiresIn: 300, signingDate });
    expect(made).toBeGreaterThan(0);
    expect(ours).toBe(theirs);
    expect(new URL(ours).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });
});
