import { execFile } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { ensureResources } from '../src/bootstrap/resources.ts';
import { createAwsClients } from '../src/adapters/aws.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { freePort, startLocalStack } from '../src/local/emulators.ts';
import { RUNTIME_FLAGS } from '../src/processes/v8-flags.ts';
import { childPidsNamed, collectLog, ownStack, startNode, startReaper, stopNode, waitForHttp, watchPid } from './processes.ts';
import { here, log, settings } from './settings.ts';

// The service as the measurements run it: the local stack with the
// service's resources, API processes of the build, and the mover of large
// transfers (transfer.ts). Shared by `make bench` (run.ts) and the
// measurements of their own (streaming-gc.ts).

/** DynamoDB calls answered by the local emulator so far, by operation (Query, BatchGetItem, PutItem, ...). */
export type DynamoDbCalls = Record<string, number>;

/** Another API process of the same build, with settings of its own (tracing on, a fresh heap, ...). */
export type ExtraApi = { origin: string; pid: number; stop(): Promise<void> };

/**
 * The reaper, then the local stack with the service's tables, bucket and
 * queues; its endpoints are added to this process's environment. Returns
 * the environment an API process runs with.
 */
export async function startService(): Promise<{ config: Config; serviceEnv: NodeJS.ProcessEnv; redisPid: number | undefined; dynamodbCalls: () => DynamoDbCalls }> {
  await startReaper();
  log('starting the local stack (dynalite and fauxqs in this process, redis-server)');
  const stack = await startLocalStack();
  ownStack(stack);
  // Every call the emulator answers, by operation (X-Amz-Target: DynamoDB_20120810.<Operation>).
  const calls: DynamoDbCalls = {};
  stack.dynamodbServer.on('request', (request: IncomingMessage) => {
    const target = request.headers['x-amz-target'];
    const operation = typeof target === 'string' ? target.slice(target.indexOf('.') + 1) : 'unknown';
    calls[operation] = (calls[operation] ?? 0) + 1;
  });
  // redis-server is started by the stack, not by startNode(): found by name among our children.
  const redisPid = childPidsNamed('redis-server')[0];
  if (redisPid) watchPid(redisPid);
  Object.assign(process.env, stack.env);
  const config = loadConfig(process.env);
  const aws = createAwsClients(config);
  await ensureResources(config, aws);
  aws.destroy();
  const serviceEnv = {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AUTH_MODE: 'none',
    // Per-tenant rate limiting would turn a load test into a test of the limiter.
    RATE_LIMIT_PER_MINUTE: '1000000000',
    // Every request is the one tenant `public`: its share of the upload slots (8 by default) would
    // refuse two of transfer-64mb's ten uploads at once, which measure memory, not the share.
    MAX_CONCURRENT_UPLOADS_PER_TENANT: '16',
  };
  return { config, serviceEnv, redisPid, dynamodbCalls: () => ({ ...calls }) };
}

/** An API process of the build on a free port, once it answers; `nodeArgs` come after the service's runtime flags. */
export async function startApiProcess(
  serviceEnv: NodeJS.ProcessEnv,
  nodeArgs: readonly string[],
  env: Record<string, string> = {},
  entry = settings.apiEntry,
): Promise<ExtraApi> {
  const port = await freePort();
  const api = startNode([...RUNTIME_FLAGS, ...nodeArgs, entry], { ...serviceEnv, ...env, PORT: String(port) }, 'pipe');
  collectLog(api);
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp('an API', api, `${origin}/health/live`, 20_000);
  return { origin, pid: api.pid!, stop: () => stopNode(api) };
}

/** get-hot's document: 1 KiB of JSON, exactly. */
export const HOT_DOCUMENT = { body: Buffer.from(`{"hot":true,"pad":"${'x'.repeat(1024 - '{"hot":true,"pad":""}'.length)}"}`), contentType: 'application/json' };

/** An API that reads a document: its origin, or that and the headers it needs (a key). */
export type Reader = string | { origin: string; headers: Record<string, string> };

/**
 * PUTs a hot document through one API, then reads it twice through each of `readThrough`, which
 * leaves it in their process memory. A busy machine can lag a fresh API's event loop past its
 * shedding limit: a 503 is retried, ten times a second apart.
 */
export async function putHotDocument(origin: string, id: string, readThrough: readonly Reader[] = [origin], document = HOT_DOCUMENT): Promise<void> {
  const put = () => fetch(`${origin}/documents/${id}`, { method: 'PUT', headers: { 'content-type': document.contentType }, body: document.body });
  let answer = await put();
  for (let retries = 10; answer.status === 503 && retries > 0; retries--) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    answer = await put();
  }
  if (answer.status !== 201) throw new Error(`PUT of the hot document answered ${answer.status}: ${await answer.text()}`);
  for (const reader of readThrough) {
    const { origin: through, headers } = typeof reader === 'string' ? { origin: reader, headers: {} } : reader;
    for (let i = 0; i < 2; i++) await (await fetch(`${through}/documents/${id}`, { headers })).arrayBuffer();
  }
}

/** A transfer.ts answer: a resumable-prepare's says where its upload is, a ceiling-parts' which parts it sent. */
type Moved = { ms: number; ok: number; location?: string; offset?: number; uploadId?: string; parts?: unknown[] };

/** Runs one job of transfer.ts (its own process) and reads its answer. */
export async function move(job: Record<string, unknown>): Promise<Moved> {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [`${here}transfer.ts`, JSON.stringify(job)], { maxBuffer: 1024 * 1024 });
  // What it says of a failed transfer (the statuses answered) belongs in the run's log.
  if (stderr) process.stderr.write(stderr);
  return JSON.parse(stdout) as Moved;
}
