import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { freePort, RedisServer } from '../../src/local/emulators.ts';
import { RUNTIME_FLAGS } from '../../src/processes/v8-flags.ts';
import { SERVER_ENTRY, assertBuilt, sleep } from '../faults/support.ts';
import { testApp, testConfig } from '../support/app.ts';

// On EKS the Redis AUTH token lives in Secrets Manager only, and the API (and,
// of several regions, the invalidation worker) reads it at start with its own
// role (REDIS_AUTH_SECRET_ID). Here: a real
// redis-server that requires a password, and a stand-in for Secrets Manager,
// which no local emulator offers. The stand-in answers GetSecretValue for one
// secret and ResourceNotFoundException for any other; the real service also
// checks the caller's signature against IAM, versions the value and encrypts
// it with KMS, none of which this test needs.

const token = randomBytes(24).toString('hex');
const secretArn = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:docsvc-redis-auth-AbCdEf';
let redis: ChildProcess;
let redisUrl: string;
let secrets: Server;
let secretsUrl: string;
const calls: { target: string | undefined; secretId: string; signed: boolean }[] = [];
const apps: FastifyInstance[] = [];
const workers: ChildProcess[] = [];

/** The built invalidation worker, its queue out of reach (its loop retries): only its start and its Redis matter here. */
async function startWorker(secretId: string): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> {
  assertBuilt();
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, SERVER_ENTRY.replace(/api\.js$/, 'invalidations.js')], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      METRICS_PORT: String(await freePort()),
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}`,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl,
      REDIS_URL: redisUrl,
      REDIS_AUTH_SECRET_ID: secretId,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk));
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))), output: () => text };
}

beforeAll(async () => {
  const port = await freePort();
  redis = spawn(RedisServer.binary(), ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', token], {
    stdio: 'ignore',
  });
  redisUrl = `redis://127.0.0.1:${port}`;

  secrets = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      calls.push({
        target: request.headers['x-amz-target']?.toString(),
        secretId: SecretId,
        signed: /^AWS4-HMAC-SHA256 Credential=\w+\/\d{8}\/us-east-1\/secretsmanager\//.test(request.headers.authorization ?? ''),
      });
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (SecretId !== secretArn) {
        response.statusCode = 400;
        response.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }));
        return;
      }
      response.end(JSON.stringify({ ARN: secretArn, Name: 'docsvc-redis-auth-AbCdEf', SecretString: token, VersionId: 'v1' }));
    });
  });
  secrets.listen(0, '127.0.0.1');
  await once(secrets, 'listening');
  secretsUrl = `http://127.0.0.1:${(secrets.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(
    workers.map(async (worker) => {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
      if (worker.exitCode === null && worker.signalCode === null) await once(worker, 'exit');
    }),
  );
  redis?.kill('SIGKILL');
  secrets?.close();
});

describe('the Redis AUTH token from Secrets Manager', () => {
  it('is read once at start, signed with the process credentials, and opens the Redis connection', async () => {
    // testApp waits for /health to report the cache ok: only an authenticated connection is.
    const app = await testApp({
      config: { REDIS_URL: redisUrl, REDIS_AUTH_SECRET_ID: secretArn, AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl },
    });
    apps.push(app);
    expect(calls).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArn, signed: true }]);
    expect((await app.inject({ method: 'GET', url: '/health' })).json().cache).toBe('ok');
  });

  it('is what the connection needs: without it the same Redis refuses the API', async () => {
    const app = await buildApp({ config: testConfig({ REDIS_URL: redisUrl }) });
    apps.push(app);
    await app.ready();
    const health = (await app.inject({ method: 'GET', url: '/health' })).json();
    expect(health).toMatchObject({ status: 'degraded', cache: 'down', storage: 'ok' });
  });

  it('stops the start, naming the reason, when the secret cannot be read', async () => {
    await expect(
      buildApp({
        config: testConfig({ REDIS_URL: redisUrl, REDIS_AUTH_SECRET_ID: 'no-such-secret', AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl }),
      }),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('is read the same way by the invalidation worker, whose connections then authenticate', async () => {
    calls.length = 0;
    const worker = await startWorker(secretArn);
    const admin = new Redis(redisUrl, { password: token, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await admin.connect();
      // Redis names a connection only once AUTH let it in: both of the worker's, the commands' and the acknowledgements'.
      const names = async () => [...String(await admin.client('LIST')).matchAll(/ name=(\S+)/g)].map((match) => match[1]).sort();
      for (const deadline = Date.now() + 15_000; !(await names()).includes('invalidations-acks') || !(await names()).includes('invalidations'); ) {
        if (worker.child.exitCode !== null) throw new Error(`the worker exited:\n${worker.output()}`);
        if (Date.now() > deadline) throw new Error(`no authenticated connection of the worker after 15 s (${(await names()).join(', ')}):\n${worker.output()}`);
        await sleep(50);
      }
      expect(calls).toEqual([{ target: 'secretsmanager.GetSecretValue', secretId: secretArn, signed: true }]);
    } finally {
      admin.disconnect();
    }
  });

  it('stops the invalidation worker at start, naming the reason, when the secret cannot be read', async () => {
    const worker = await startWorker('no-such-secret');
    expect(await worker.exited).not.toBe(0);
    expect(worker.output()).toMatch(/ResourceNotFoundException/);
  });
});
