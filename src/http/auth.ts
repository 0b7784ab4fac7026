import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { hash, timingSafeEqual } from 'node:crypto';
import { Errors } from '../errors.ts';
import type { AuthFailureLimiter } from './auth-failures.ts';

/** Where a request's principal is kept: null until a key is checked. */
const PRINCIPAL: unique symbol = Symbol('principal');

declare module 'fastify' {
  interface FastifyRequest {
    [PRINCIPAL]: Principal | null;
    /** The tenant the request acts for; every stored item is scoped by it. */
    tenant: string;
    /** Who is asking: the key (its id, safe to log) and what it may do beyond its tenant's documents. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** true: reachable without credentials (health, metrics, OpenAPI). */
    public?: boolean;
  }
}

export const PUBLIC_TENANT = 'public';

/**
 * `keyId`: the first 12 hex digits of the key's SHA-256 (as API_KEYS lists
 * it), or `anonymous` without authentication. `legalHold`: may place and
 * lift legal holds.
 */
export type Principal = { keyId: string; legalHold: boolean };

const ANONYMOUS: Principal = { keyId: 'anonymous', legalHold: true };

type KeyEntry = { tenant: string; hash: Buffer; principal: Principal };

/** API_KEYS holds `tenant:<sha256 hex of the key>[:legal-hold]` entries, never plain keys. */
export function parseApiKeys(value: string): KeyEntry[] {
  if (value === '') return [];
  return value.split(',').map((entry) => {
    const [tenant, hex, scope] = entry.split(':') as [string, string, string | undefined];
    return { tenant, hash: Buffer.from(hex, 'hex'), principal: { keyId: hex.slice(0, 12), legalHold: scope === 'legal-hold' } };
  });
}

/** The key of `Bearer <key>`; the scheme is case-insensitive (RFC 9110 §11.1), the key is not. */
function bearerKey(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : /^bearer ([\x21-\x7e]{1,512})$/i.exec(authorization)?.[1];
}

/** The entry whose hash is `presented`; every entry is compared, in constant time, so timing tells nothing. */
function matching(entries: KeyEntry[], presented: Buffer): KeyEntry | undefined {
  let found: KeyEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.hash, presented)) found ??= entry;
  }
  return found;
}

export function entryOf(entries: KeyEntry[], key: string | undefined): KeyEntry | undefined {
  return key === undefined ? undefined : matching(entries, hash('sha256', key, 'buffer'));
}

/**
 * True when a key that failed is itself one of the configured hashes: the
 * sign of API_KEYS holding a raw key where its SHA-256 belongs (a key made
 * with `openssl rand -hex 32` has the shape of a hash and passes validation).
 */
export function isConfiguredHash(entries: KeyEntry[], key: string | undefined): boolean {
  return key !== undefined && /^[0-9a-fA-F]{64}$/.test(key) && matching(entries, Buffer.from(key, 'hex')) !== undefined;
}

export type AuthOptions = {
  mode: 'none' | 'api-key';
  apiKeys: string;
  /** Failed authentications per client address (request.ip, see TRUST_PROXY). */
  failures: AuthFailureLimiter;
};

export const authPlugin = fp(
  async (app, options: AuthOptions) => {
    const entries = parseApiKeys(options.apiKeys);
    app.decorateRequest('tenant', PUBLIC_TENANT);
    // A slot of every request (null until a key is checked) rather than a WeakMap entry per request.
    app.decorateRequest(PRINCIPAL, null);
    app.decorateRequest('principal', {
      getter(this: FastifyRequest) {
        return this[PRINCIPAL] ?? ANONYMOUS;
      },
      setter(this: FastifyRequest, principal: Principal) {
        this[PRINCIPAL] = principal;
      },
    });
    if (options.mode === 'none') return;
    if (entries.length === 0) app.log.warn('AUTH_MODE=api-key and API_KEYS is empty: every request but probes, metrics and /openapi.json is refused with 401');

    const { failures } = options;
    let warnedRawKey = false;
    // A callback hook: every request but the public ones runs it, and a promise each is measurable.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.config.public) return done();
      const retryAfter = failures.retryAfter(request.ip);
      if (retryAfter !== undefined) return done(Object.assign(new Errors.RateLimited(), { retryAfter }));
      const key = bearerKey(request.headers.authorization);
      const entry = entryOf(entries, key);
      if (entry === undefined) {
        failures.failed(request.ip);
        if (!warnedRawKey && isConfiguredHash(entries, key)) {
          warnedRawKey = true;
          app.log.warn('a client presented a key equal to a hash in API_KEYS: API_KEYS holds the key itself, not its SHA-256 (see docs/api.md, Authentication and tenants)');
        }
        reply.header('www-authenticate', 'Bearer');
        return done(new Errors.Unauthenticated());
      }
      request.tenant = entry.tenant;
      request.principal = entry.principal;
      done();
    });
  },
  { name: 'auth', fastify: '5.x' },
);
