import { createServer, type Server } from 'node:http';
import { createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { parse as parseDisposition } from 'content-disposition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

// The API started with a CloudFront distribution configured (DOCUMENT_CDN_*):
// its private key read at start from Secrets Manager, with the process's
// credentials, as the Redis token is (test/integration/redis-auth-secret.test.ts;
// no local emulator has Secrets Manager, so a stand-in answers
// GetSecretValue for one secret), and GET /documents/{id}/link answering a
// CloudFront signed URL whose signature the pair's public key verifies. No
// emulator has CloudFront either: that it serves the URL is docs/deploy.md's
// check on a deployment.

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const secretArn = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:docsvc-cdn-private-key-AbCdEf';
const DOMAIN = 'd111111abcdef8.cloudfront.net';
const KEY_PAIR_ID = 'K2JCJMDEHXQW5F';
const calls: { target: string | undefined; secretId: string }[] = [];
let secrets: Server;
let secretsUrl: string;
let app: FastifyInstance;

const cdnConfig = (secretId: string) => ({
  DOCUMENT_CDN_DOMAIN: DOMAIN,
  DOCUMENT_CDN_KEY_PAIR_ID: KEY_PAIR_ID,
  DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: secretId,
  AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl,
  INLINE_CONTENT_MAX_BYTES: 0,
});

beforeAll(async () => {
  secrets = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      calls.push({ target: request.headers['x-amz-target']?.toString(), secretId: SecretId });
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      const value = SecretId === secretArn ? privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() : SecretId === 'not-a-key' ? 'hello' : undefined;
      if (value === undefined) {
        response.statusCode = 400;
        response.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
        return;
      }
      response.end(JSON.stringify({ ARN: SecretId, Name: SecretId, SecretString: value, VersionId: 'v1' }));
    });
  });
  secrets.listen(0, '127.0.0.1');
  await once(secrets, 'listening');
  secretsUrl = `http://127.0.0.1:${(secrets.address() as AddressInfo).port}`;
  app = await testApp({ config: cdnConfig(secretArn) });
});

afterAll(async () => {
  await app?.close();
  secrets?.close();
});

describe('direct links through CloudFront', () => {
  it('reads the private key once at start, and answers CloudFront signed URLs on the distribution', async () => {
    expect(calls).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArn }]);
    const id = uniqueId('cdn');
    const put = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { 'content-type': 'application/pdf' }, body: randomBytes(1024) });
    expect(put.statusCode).toBe(201);
    const before = Date.now();
    const answer = await app.inject({ method: 'GET', url: `/documents/${id}/link` });
    expect(answer.statusCode).toBe(200);
    const { url: link, expiresAt } = answer.json() as { url: string; expiresAt: string };
    const url = new URL(link);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe(DOMAIN);
    expect(url.pathname).toMatch(new RegExp(`^/public/${id}/[0-9a-f-]+$`));
    expect(url.searchParams.get('Key-Pair-Id')).toBe(KEY_PAIR_ID);
    expect(url.searchParams.get('response-content-type')).toBe('application/pdf');
    expect(parseDisposition(url.searchParams.get('response-content-disposition')!)).toEqual({ type: 'attachment', parameters: { filename: id } });
    // The expiry the API announces is the one signed.
    const expires = Number(url.searchParams.get('Expires'));
    expect(Math.abs(expires * 1000 - Date.parse(expiresAt))).toBeLessThanOrEqual(1000);
    expect(expires * 1000).toBeGreaterThan(before);
    // As CloudFront checks it: the canned policy of the URL without its signing parameters.
    const resource = `${url.origin}${url.pathname}?${url.search.slice(1).split('&').filter((pair) => pair.startsWith('response-')).join('&')}`;
    const policy = JSON.stringify({ Statement: [{ Resource: resource, Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }] });
    const signature = Buffer.from(url.searchParams.get('Signature')!.replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'), 'base64');
    expect(createVerify('RSA-SHA256').update(policy).verify(publicKey, signature)).toBe(true);
  });

  it('does not start when the secret holds no usable key, or cannot be read', async () => {
    await expect(buildApp({ config: testConfig(cdnConfig('not-a-key')) })).rejects.toMatchObject({ code: 'CDN_PRIVATE_KEY_INVALID' });
    await expect(buildApp({ config: testConfig(cdnConfig('no-such-secret')) })).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
