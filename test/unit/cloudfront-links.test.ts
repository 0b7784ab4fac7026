import { createVerify, generateKeyPairSync } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { parse as parseDisposition } from 'content-disposition';
import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { CdnPrivateKeyError, CloudFrontLinkSigner, S3LinkSigner, cdnPrivateKey, documentLinkSigner } from '../../src/documents/links.ts';

// CloudFront signed URLs for direct links (issue 21): each URL is checked the
// way CloudFront checks it, with the public key of a key pair made here: the
// canned policy rebuilt from the URL without its signing parameters, its
// RSA-SHA256 signature verified, its expiry read back. What this cannot prove:
// that CloudFront accepts it (no emulator has it) and that S3 behind OAC
// applies the response-* parameters; docs/deploy.md says how to check that
// on a deployment.

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const DOMAIN = 'd111111abcdef8.cloudfront.net';
const KEY_PAIR_ID = 'K2JCJMDEHXQW5F';
const signer = new CloudFrontLinkSigner({ domain: DOMAIN, keyPairId: KEY_PAIR_ID, privateKey: cdnPrivateKey(pem, 'test') });
const from = new Date('2026-05-01T12:00:00.000Z');
const target = { s3Key: 'acme/report-1/0199b3c1-7e4a-7000-8000-000000000001', contentType: 'application/pdf', filename: 'report-1' };

const SIGNING = ['Expires', 'Signature', 'Key-Pair-Id', 'Hash-Algorithm'];

/** CloudFront's check of a canned-policy URL: the URL without the signing parameters is the policy's resource. */
function verify(link: string, key = publicKey): boolean {
  const url = new URL(link);
  const kept = url.search
    .slice(1)
    .split('&')
    .filter((pair) => !SIGNING.includes(pair.split('=')[0]!));
  const resource = `${url.origin}${url.pathname}${kept.length > 0 ? `?${kept.join('&')}` : ''}`;
  const policy = JSON.stringify({ Statement: [{ Resource: resource, Condition: { DateLessThan: { 'AWS:EpochTime': Number(url.searchParams.get('Expires')) } } }] });
  // CloudFront's URL-safe base64: + = / as - _ ~.
  const signature = Buffer.from(url.searchParams.get('Signature')!.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64');
  return createVerify('RSA-SHA256').update(policy).verify(key, signature);
}

/** The same URL with one query parameter set otherwise, as someone holding the link might try. */
function withParameter(link: string, name: string, value: string): string {
  const url = new URL(link);
  url.searchParams.set(name, value);
  return url.toString();
}

describe('CloudFrontLinkSigner', () => {
  it("makes an https URL on the distribution, the object's key as path, signed with the key pair's private key", async () => {
    const link = await signer.sign(target, { from, seconds: 300 });
    const url = new URL(link);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe(DOMAIN);
    expect(url.pathname).toBe(`/${target.s3Key}`);
    expect(url.searchParams.get('Key-Pair-Id')).toBe(KEY_PAIR_ID);
    expect(url.searchParams.get('Hash-Algorithm')).toBe('SHA256');
    expect(verify(link)).toBe(true);
    // Another key pair's public key does not verify it.
    expect(verify(link, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)).toBe(false);
  });

  it('expires the validity after from', async () => {
    for (const seconds of [1, 300, 3600]) {
      const url = new URL(await signer.sign(target, { from, seconds }));
      expect(Number(url.searchParams.get('Expires'))).toBe(from.getTime() / 1000 + seconds);
    }
  });

  it("carries the stored Content-Type and an attachment disposition, under the signature", async () => {
    const link = await signer.sign(target, { from, seconds: 300 });
    const url = new URL(link);
    expect(url.searchParams.get('response-content-type')).toBe('application/pdf');
    expect(parseDisposition(url.searchParams.get('response-content-disposition')!)).toEqual({ type: 'attachment', parameters: { filename: 'report-1' } });
    // Changed or added by the holder, the signature no longer verifies: CloudFront answers 403.
    expect(verify(withParameter(link, 'response-content-type', 'text/html'))).toBe(false);
    expect(verify(withParameter(link, 'response-content-disposition', 'inline'))).toBe(false);
    expect(verify(withParameter(link, 'Expires', String(from.getTime() / 1000 + 86_400)))).toBe(false);
  });

  it.each([
    ['a crafted file name', { filename: 'a"; filename="evil.html', contentType: 'text/plain' }],
    ['a name and a type that need encoding', { filename: 'résumé 😀 & co;.pdf', contentType: 'text/plain; charset=utf-8' }],
  ])('keeps %s inside its parameters, and signed', async (_name, headers) => {
    const link = await signer.sign({ ...target, ...headers }, { from, seconds: 60 });
    const url = new URL(link);
    expect([...url.searchParams.keys()].sort()).toEqual(['Expires', 'Hash-Algorithm', 'Key-Pair-Id', 'Signature', 'response-content-disposition', 'response-content-type']);
    expect(url.searchParams.get('response-content-type')).toBe(headers.contentType);
    expect(parseDisposition(url.searchParams.get('response-content-disposition')!)).toEqual({ type: 'attachment', parameters: { filename: headers.filename } });
    expect(verify(link)).toBe(true);
  });

  it('encodes each segment of a key, keeping its slashes', async () => {
    const link = await signer.sign({ ...target, s3Key: 't-1/id with space/u' }, { from, seconds: 60 });
    expect(new URL(link).pathname).toBe('/t-1/id%20with%20space/u');
    expect(verify(link)).toBe(true);
  });
});

describe('the private key, checked at start', () => {
  it.each([
    ['not PEM', 'hello'],
    ['a public key', publicKey.export({ format: 'pem', type: 'spki' }).toString()],
    ['an EC key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['an RSA 4096 key', generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
  ])('refuses %s, naming the secret', (_name, value) => {
    let thrown: unknown;
    try {
      cdnPrivateKey(value, 'docsvc-cdn-key');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CdnPrivateKeyError);
    expect(thrown).toMatchObject({ code: 'CDN_PRIVATE_KEY_INVALID', message: expect.stringContaining('DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID (docsvc-cdn-key)') });
  });

  it('takes PKCS#1 and PKCS#8 RSA 2048 keys (openssl writes either)', () => {
    expect(cdnPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs1' }).toString(), 's').asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cdnPrivateKey(pem, 's').asymmetricKeyType).toBe('rsa');
  });
});

describe('documentLinkSigner: which links a configuration makes', () => {
  const s3 = new S3Client({ region: 'eu-west-1' });
  const cdn = { DOCUMENT_CDN_DOMAIN: DOMAIN, DOCUMENT_CDN_KEY_PAIR_ID: KEY_PAIR_ID, DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: 'docsvc-cdn-key' };
  const config = (env: Record<string, string> = {}): Config => loadConfig({ AWS_REGION: 'eu-west-1', ...env });

  it('S3 presigned URLs without a distribution, reading no secret', async () => {
    const reads: string[] = [];
    const chosen = await documentLinkSigner(config(), s3, async (_config, id) => (reads.push(id), pem));
    expect(chosen).toBeInstanceOf(S3LinkSigner);
    expect(reads).toEqual([]);
  });

  it("CloudFront signed URLs with one, its private key read once from the secret", async () => {
    const reads: string[] = [];
    const chosen = await documentLinkSigner(config(cdn), s3, async (_config, id) => (reads.push(id), pem));
    expect(chosen).toBeInstanceOf(CloudFrontLinkSigner);
    expect(reads).toEqual(['docsvc-cdn-key']);
    const link = await chosen.sign(target, { from, seconds: 60 });
    expect(new URL(link).host).toBe(DOMAIN);
    expect(verify(link)).toBe(true);
  });

  it('fails the start when the secret holds no usable key', async () => {
    await expect(documentLinkSigner(config(cdn), s3, async () => 'not a key')).rejects.toBeInstanceOf(CdnPrivateKeyError);
  });

  it('refuses a configuration with only part of the distribution', () => {
    expect(() => config({ DOCUMENT_CDN_DOMAIN: DOMAIN })).toThrow(/DOCUMENT_CDN_KEY_PAIR_ID, DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: set with DOCUMENT_CDN_DOMAIN/);
    expect(() => config({ ...cdn, DOCUMENT_CDN_DOMAIN: 'https://x.example' })).toThrow(/DOCUMENT_CDN_DOMAIN/);
  });
});
