import { spawn, type ChildProcess } from 'node:child_process';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { ensureDocumentResources, ensureResources } from '../../src/bootstrap/resources.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort, startLocalStack, type LocalStack } from '../../src/local/emulators.ts';
import { RUNTIME_FLAGS } from '../../src/processes/v8-flags.ts';
import { SERVER_ENTRY, assertBuilt, kill, sleep, startServer, type ServerProcess } from '../faults/support.ts';
import { Replication, type Channel } from './replication.ts';

// Two "regions" on one machine: two local stacks (dynalite, fauxqs,
// redis-server each), joined by the replication double, with one API
// process and one invalidation worker per region, started from the build
// (`make build`) as they run in production.

export const PRIMARY = 'us-east-1';
export const SECONDARY = 'eu-west-1';
const NAMES = [PRIMARY, SECONDARY] as const;
const bucketOf = (region: string) => `documents-${region}`;
const topicOf = (region: string) => `arn:aws:sns:${region}:000000000000:document-events`;
const WORKER_ENTRY = SERVER_ENTRY.replace(/api\.js$/, 'invalidations.js');

export type RegionProcess = { child: ChildProcess; exited: Promise<number | null>; output: () => string; url: string };

export type TestRegion = {
  name: string;
  env: Record<string, string>;
  url: string;
  api: ServerProcess;
  worker: RegionProcess;
};

export type TwoRegions = {
  replication: Replication;
  regions: Record<string, TestRegion>;
  /** One more API process of a region, for a test that kills it; stopped with the rest. */
  startApi(region: string, env?: Record<string, string>): Promise<{ url: string; api: ServerProcess }>;
  stop(): Promise<void>;
};

/** Settings of every process: small thresholds so that a few small documents exercise S3, streaming and locks. */
export const SETTINGS = {
  LOG_LEVEL: 'warn',
  // A loaded machine must not turn reads into 503s: this is not what these tests are about.
  LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
  // Nor a slow emulator into 503 DEPENDENCY_TIMEOUT (a delete at load 10): AWS calls get 10 s here, not 1 s.
  AWS_REQUEST_TIMEOUT_MS: '10000',
  AWS_CONNECT_TIMEOUT_MS: '5000',
  INLINE_CONTENT_MAX_BYTES: '1024',
  DOCUMENT_CACHE_MAX_BYTES: '4096',
  MEMORY_CACHE_LEASE_MS: '1000',
  IDEMPOTENCY_LOCK_SECONDS: '2',
  CONSUMER_WAIT_SECONDS: '20',
};

export type TwoStacks = {
  replication: Replication;
  /** The environment of a region's processes: its own emulators behind the replication proxies, the other region's as remote endpoints. */
  envOf(region: string): Record<string, string>;
  stop(): Promise<void>;
};

/**
 * The two regions' local stacks, joined by the replication double and
 * bootstrapped, without any process: for a test that runs the code of a
 * process in its own (the content sweeper, on a clock it moves).
 */
export async function startTwoStacks(lag: Record<Channel, number>): Promise<TwoStacks> {
  const stacks = new Map<string, LocalStack>();
  for (const name of NAMES) stacks.set(name, await startLocalStack());
  const replication = await Replication.start(
    NAMES.map((name) => ({
      name,
      dynamodbUrl: stacks.get(name)!.env.AWS_ENDPOINT_URL_DYNAMODB!,
      awsUrl: stacks.get(name)!.env.AWS_ENDPOINT_URL!,
      bucket: bucketOf(name),
      topicArn: topicOf(name),
      invalidationsQueue: 'document-invalidations',
    })),
    { tables: ['documents', 'idempotency-keys'], lag },
  );

  const envOf = (name: string): Record<string, string> => {
    const other = NAMES.find((region) => region !== name)!;
    const stack = stacks.get(name)!;
    return {
      ...stack.env,
      ...SETTINGS,
      AWS_REGION: name,
      AWS_ENDPOINT_URL_DYNAMODB: replication.endpoints(name).dynamodb,
      AWS_ENDPOINT_URL_S3: replication.endpoints(name).s3,
      DOCUMENTS_BUCKET: bucketOf(name),
      DOCUMENT_REGIONS: NAMES.map((region) => `${region}=${bucketOf(region)}`).join(','),
      DOCUMENT_EVENTS_TOPIC_ARN: topicOf(name),
      DOCUMENT_CHANGES_TOPIC_ARN: `arn:aws:sns:${name}:000000000000:document-changes`,
      REGION_ENDPOINT_URLS: `${other}=${stacks.get(other)!.env.AWS_ENDPOINT_URL}`,
      REGION_ENDPOINT_URLS_DYNAMODB: `${other}=${replication.endpoints(other).dynamodb}`,
      REGION_ENDPOINT_URLS_S3: `${other}=${replication.endpoints(other).s3}`,
    };
  };

  // The primary has everything; the other region only the document path (orders live in the primary).
  for (const name of NAMES) {
    const config = loadConfig(envOf(name));
    const aws = createAwsClients(config);
    await (name === PRIMARY ? ensureResources(config, aws) : ensureDocumentResources(config, aws));
    aws.destroy();
  }
  return {
    replication,
    envOf,
    async stop() {
      await replication.stop();
      await Promise.all([...stacks.values()].map((stack) => stack.stop()));
    },
  };
}

export async function startTwoRegions(lag: Record<Channel, number>): Promise<TwoRegions> {
  assertBuilt();
  const { replication, envOf, stop: stopStacks } = await startTwoStacks(lag);
  await replication.tapEvents();

  const extra: ServerProcess[] = [];
  const startApi = async (name: string, env: Record<string, string> = {}) => {
    const port = await freePort();
    const api = await startServer({ ...envOf(name), ...env }, port);
    extra.push(api);
    return { url: `http://127.0.0.1:${port}`, api };
  };
  const started = await Promise.all(
    NAMES.map(async (name): Promise<TestRegion> => {
      const port = await freePort();
      const [api, worker] = await Promise.all([startServer(envOf(name), port), startWorker(envOf(name))]);
      return { name, env: envOf(name), url: `http://127.0.0.1:${port}`, api, worker };
    }),
  );
  const regions = Object.fromEntries(started.map((region) => [region.name, region]));
  return {
    replication,
    regions,
    startApi,
    async stop() {
      await Promise.all([...started.flatMap((region) => [kill(region.api), stopProcess(region.worker)]), ...extra.map(kill)]);
      await stopStacks();
    },
  };
}

async function startWorker(env: Record<string, string>): Promise<RegionProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, WORKER_ENTRY], {
    env: { ...process.env, ...env, HOST: '127.0.0.1', METRICS_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer) => (text = (text + chunk).slice(-100_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (const deadline = Date.now() + 45_000; ; ) { // a hang guard, not a measure
    if (child.exitCode !== null) throw new Error(`invalidation worker exited before ready:\n${text}`);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return { child, exited, output: () => text, url: `http://127.0.0.1:${port}` };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`invalidation worker not ready:\n${text}`);
    }
    await sleep(50);
  }
}

async function stopProcess(process: RegionProcess) {
  if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
  await process.exited;
}

/** A counter of a process's /metrics, summed over the label sets that match `labels`. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
