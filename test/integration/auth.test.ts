import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { appPlugin, serverOptions } from '../../src/app.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

const keys = { acme: `acme-${uniqueId()}`, globex: `globex-${uniqueId()}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp({
    config: {
      AUTH_MODE: 'api-key',
      API_KEYS: `acme:${hashApiKey(keys.acme)},globex:${hashApiKey(keys.globex)}`,
      RATE_LIMIT_PER_MINUTE: 1000,
    },
  });
});
afterAll(async () => {
  await app.close();
});

describe('API keys', () => {
  it.each([
    ['no Authorization', {}],
    ['an unknown key', bearer('not-a-key')],
    ['a non-Bearer scheme', { authorization: `Basic ${keys.acme}` }],
    ['an empty Bearer', { authorization: 'Bearer ' }],
  ])('answers 401 UNAUTHENTICATED with WWW-Authenticate for %s', async (_name, headers) => {
    const response = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(response.json().code).toBe('UNAUTHENTICATED');
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('takes the scheme in any case (RFC 9110 §11.1): %s <key>', async (scheme) => {
    const response = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: { authorization: `${scheme} ${keys.acme}` } });
    expect(response.statusCode, response.body).toBe(404);
    expect(response.json().code).toBe('DOCUMENT_NOT_FOUND');
  });

  it('but not the key: the key in another case is unknown', async () => {
    const response = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(keys.acme.toUpperCase()) });
    expect(response.statusCode).toBe(401);
  });

  it('refuses two Authorization headers with 400 DUPLICATE_HEADER, whichever comes first', async () => {
    for (const pair of [
      [`Bearer ${keys.acme}`, 'Bearer not-a-key'],
      ['Bearer not-a-key', `Bearer ${keys.acme}`],
      [`Bearer ${keys.acme}`, `Bearer ${keys.globex}`],
    ]) {
      const headers: Record<string, string[]> = { authorization: pair };
      const response = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });
      expectProblem(response, 400, 'DUPLICATE_HEADER');
    }
  });

  it('lets health, metrics and the OpenAPI document through without a key', async () => {
    for (const url of ['/health', '/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });
});

describe('tenants', () => {
  it("keeps one tenant's documents invisible to another, and intact", async () => {
    const created = await app.inject({ method: 'POST', url: '/documents', payload: 'acme secret', headers: { ...bearer(keys.acme), 'content-type': 'text/plain' } });
    expect(created.statusCode).toBe(201);
    const url = `/documents/${created.json().id}`;
    for (const method of ['GET', 'HEAD', 'DELETE'] as const) {
      expect((await app.inject({ method, url, headers: bearer(keys.globex) })).statusCode, method).toBe(404);
    }
    expect((await app.inject({ method: 'GET', url: `${url}/metadata`, headers: bearer(keys.globex) })).statusCode).toBe(404);
    const own = await app.inject({ method: 'GET', url, headers: bearer(keys.acme) });
    expect(own.statusCode).toBe(200);
    expect(own.body).toBe('acme secret');
  });

  it('lets two tenants use the same client id without touching each other', async () => {
    const id = uniqueId('shared-name');
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'A', headers: bearer(keys.acme) })).statusCode).toBe(201);
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'G', headers: bearer(keys.globex) })).statusCode).toBe(201);
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: bearer(keys.acme) })).body).toBe('A');
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: bearer(keys.globex) })).body).toBe('G');
  });

  it('gives each tenant its own Idempotency-Key space', async () => {
    const key = uniqueId('key');
    const post = (apiKey: string, payload: string) =>
      app.inject({ method: 'POST', url: '/documents', payload, headers: { ...bearer(apiKey), 'idempotency-key': key, 'content-type': 'text/plain' } });
    const a = await post(keys.acme, 'from acme');
    const g = await post(keys.globex, 'from globex');
    expect(a.statusCode).toBe(201);
    expect(g.statusCode).toBe(201);
    expect(g.headers['idempotent-replayed']).toBeUndefined();
    expect(g.json().id).not.toBe(a.json().id);
  });
});

describe('rate limit', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the tenant limit, per tenant', async () => {
    const limited = await testApp({
      config: { AUTH_MODE: 'api-key', API_KEYS: `acme:${hashApiKey(keys.acme)},globex:${hashApiKey(keys.globex)}`, RATE_LIMIT_PER_MINUTE: 5 },
    });
    try {
      // Other tests' requests share the counter key space; use a tenant only this test uses.
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        statuses.push((await limited.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(keys.globex) })).statusCode);
      }
      expect(statuses.filter((s) => s === 404).length).toBeLessThanOrEqual(5);
      const refused = await limited.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(keys.globex) });
      expect(refused.statusCode).toBe(429);
      expect(refused.json().code).toBe('RATE_LIMITED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((await limited.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('configuration mistakes are logged, not silent', () => {
  /** The app with its log lines kept: the same plugin as buildApp, on a Fastify whose logger writes here. */
  async function appWithLog(config: Parameters<typeof testConfig>[0]) {
    const lines: { level: number; msg: string }[] = [];
    const stream = { write: (line: string) => void lines.push(JSON.parse(line)) };
    const resolved = testConfig({ ...config, LOG_LEVEL: 'warn' });
    const logged = Fastify({ ...serverOptions(resolved), logger: { level: 'warn', stream } });
    await logged.register(appPlugin, { config: resolved });
    await logged.ready();
    return { app: logged, warnings: () => lines.filter((line) => line.level === 40).map((line) => line.msg) };
  }

  it('warns at start when AUTH_MODE=api-key has no API_KEYS', async () => {
    const { app: empty, warnings } = await appWithLog({ AUTH_MODE: 'api-key', API_KEYS: '' });
    try {
      expect(warnings().filter((msg) => msg.includes('API_KEYS is empty'))).toHaveLength(1);
      expect((await empty.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(keys.acme) })).statusCode).toBe(401);
    } finally {
      await empty.close();
    }
  });

  it('warns, once, when a client presents a key equal to a configured hash (a raw key put where its hash belongs)', async () => {
    // The operator's mistake: the key itself (64 hex characters, the shape of a hash) in API_KEYS.
    const rawKey = hashApiKey(uniqueId());
    const { app: mistaken, warnings } = await appWithLog({ AUTH_MODE: 'api-key', API_KEYS: `acme:${rawKey}` });
    try {
      expect(warnings()).toEqual([]);
      for (let i = 0; i < 3; i++) {
        expect((await mistaken.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(rawKey) })).statusCode).toBe(401);
      }
      const raw = warnings().filter((msg) => msg.includes('holds the key itself'));
      expect(raw).toHaveLength(1);
      expect(raw[0]).not.toContain(rawKey);
    } finally {
      await mistaken.close();
    }
  });

  it('stays quiet for a correct configuration and for ordinary wrong keys', async () => {
    const { app: correct, warnings } = await appWithLog({ AUTH_MODE: 'api-key', API_KEYS: `acme:${hashApiKey(keys.acme)}` });
    try {
      expect((await correct.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(keys.acme) })).statusCode).toBe(404);
      expect((await correct.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: bearer(hashApiKey(uniqueId())) })).statusCode).toBe(401);
      expect(warnings()).toEqual([]);
    } finally {
      await correct.close();
    }
  });
});
