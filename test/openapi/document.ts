// The OpenAPI document as the app serves it, and its TypeScript types as
// openapi-typescript writes them (tools/openapi-types, which has the
// TypeScript 5 compiler API it needs). `node test/openapi/document.ts`
// (make openapi-types) rewrites test/openapi/api.ts.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { buildApp } from '../../src/app.ts';
import { configFor } from '../support/config.ts';

const root = new URL('../../', import.meta.url).pathname;
export const TYPES_FILE = 'test/openapi/api.ts';

/** GET /openapi.json of an app with the default configuration (it needs no store to answer). */
export async function servedDocument(): Promise<Record<string, any>> {
  // Redis on a port nothing listens on: the document needs no store, and no one else's Redis is touched.
  const app = await buildApp({ config: configFor({ LOG_LEVEL: 'silent', AUTH_MODE: 'api-key', REDIS_URL: 'redis://127.0.0.1:9' }) });
  try {
    await app.ready();
    return (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  } finally {
    await app.close();
  }
}

/** Asynchronous: a test's app in the same process keeps its event loop (a blocked one sheds load). */
export function generatedTypes(document: Record<string, any>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [`${root}tools/openapi-types/generate.ts`], { encoding: 'utf8', maxBuffer: 16 << 20 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
    child.stdin!.end(JSON.stringify(document));
  });
}

if (import.meta.main) {
  writeFileSync(`${root}${TYPES_FILE}`, await generatedTypes(await servedDocument()));
  console.log(`wrote ${TYPES_FILE}`);
  process.exit(0);
}
