import fp from 'fastify-plugin';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Errors } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for; every stored item is scoped by it. */
    tenant: string;
  }
  interface FastifyContextConfig {
    /** true: reachable without credentials (health, metrics, OpenAPI). */
    public?: boolean;
  }
}

export const PUBLIC_TENANT = 'public';

type KeyEntry = { tenant: string; hash: Buffer };

/** API_KEYS holds `tenant:<sha256 hex of the key>` pairs, never plain keys. */
export function parseApiKeys(value: string): KeyEntry[] {
  if (value === '') return [];
  return value.split(',').map((pair) => {
    const [tenant, hex] = pair.split(':') as [string, string];
    return { tenant, hash: Buffer.from(hex, 'hex') };
  });
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Every entry is compared, in constant time, so timing tells nothing. */
export function tenantOf(entries: KeyEntry[], authorization: string | undefined): string | undefined {
  const match = authorization?.match(/^Bearer ([\x21-\x7e]{1,512})$/);
  if (!match) return undefined;
  const presented = createHash('sha256').update(match[1]!).digest();
  let found: string | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.hash, presented)) found ??= entry.tenant;
  }
  return found;
}

export const authPlugin = fp(
  async (app, options: { mode: 'none' | 'api-key'; apiKeys: string }) => {
    const entries = parseApiKeys(options.apiKeys);
    app.decorateRequest('tenant', PUBLIC_TENANT);
    if (options.mode === 'none') return;

    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.config.public) return;
      const tenant = tenantOf(entries, request.headers.authorization);
      if (tenant === undefined) {
        reply.header('www-authenticate', 'Bearer');
        throw new Errors.Unauthenticated();
      }
      request.tenant = tenant;
    });
  },
  { name: 'auth', fastify: '5.x' },
);
