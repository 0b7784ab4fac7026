// What bench/dynamodb-tls.ts and bench/dynamodb-transport.ts share: three
// processes, so that the client's CPU is measured alone:
//   the first  makes a self-signed certificate (openssl) and starts the other two;
//   --serve    dynalite, and a node:tls terminator in front of it;
//   --measure  the script's own clients, with NODE_EXTRA_CA_CERTS trusting the
//              certificate; it prints one JSON line, whose rows the first
//              process prints as a table and then the line itself.
// Each script keeps its own variable names (the certificate's directory, the
// endpoints) and its own measurement.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';

export const TABLE = 'bench';
export const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
export const WARMUP = 300;
export const IN_FLIGHT = 16;

export type Endpoints = { http: string; https: string };

/** The names of one script's environment variables, and its file (`import.meta.url`'s path). */
type HarnessOptions = {
  self: string;
  /** In the certificate's temporary directory's name: docsvc-<tag>-. */
  tag: string;
  /** Gives the --serve process the certificate's directory. */
  dirEnv: string;
  /** Gives the --measure process the endpoints, as JSON. */
  endpointsEnv: string;
};

/** --serve: dynalite over plain HTTP, a node:tls terminator in front of it; prints the two endpoints as JSON. */
async function serveDynaliteWithTls(dirEnv: string): Promise<void> {
  const { default: dynalite } = await import('dynalite');
  const dynamo: Server = dynalite({ createTableMs: 0 });
  dynamo.listen(0, '127.0.0.1');
  await once(dynamo, 'listening');
  const dynamoPort = (dynamo.address() as AddressInfo).port;
  const dir = process.env[dirEnv]!;
  const tls = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (socket) => {
    const upstream = createConnection(dynamoPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  tls.listen(0, '127.0.0.1');
  await once(tls, 'listening');
  const endpoints: Endpoints = { http: `http://127.0.0.1:${dynamoPort}`, https: `https://127.0.0.1:${(tls.address() as AddressInfo).port}` };
  console.log(JSON.stringify(endpoints));
}

/** The first JSON line a child prints. */
function started(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n')) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before answering`)));
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round3 = (value: number) => Math.round(value * 1000) / 1000;

/** Each variant's figures, round by round (CPU and wall time per call, in ms), by a key of the script's. */
export type Results = Map<string, { cpuMs: number[]; wallMs: number[] }>;

export function record(results: Results, key: string, figures: { cpuMs: number; wallMs: number }): void {
  const entry = results.get(key) ?? { cpuMs: [], wallMs: [] };
  entry.cpuMs.push(figures.cpuMs);
  entry.wallMs.push(figures.wallMs);
  results.set(key, entry);
}

/**
 * A variant's columns: CPU per call (min, median, max), the median of its rounds' ratios to
 * `baseline`'s CPU in the same round (named `ratioName`), and the median wall time per call.
 * The machine is shared: each round's ratio compares neighbours in time.
 */
export function summarize({ cpuMs, wallMs }: { cpuMs: number[]; wallMs: number[] }, baseline: number[], ratioName: string) {
  return {
    cpuMsMin: round3(Math.min(...cpuMs)),
    cpuMsMedian: round3(median(cpuMs)),
    cpuMsMax: round3(Math.max(...cpuMs)),
    [ratioName]: round3(median(cpuMs.map((value, round) => value / baseline[round]!))),
    wallMsMedian: round3(median(wallMs)),
  };
}

/** `calls` calls, `IN_FLIGHT` at a time: process CPU and wall time per call, in ms. */
export async function timeCalls(calls: number, call: (i: number) => Promise<unknown>) {
  let next = 0;
  const cpu = process.cpuUsage();
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < calls) await call(next++);
    }),
  );
  const wall = performance.now() - startedAt;
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000 / calls, wallMs: wall / calls };
}

/** The `TABLE` the clients write to, made over plain HTTP. */
export async function createBenchTable(endpoint: string): Promise<void> {
  const admin = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials });
  await admin.send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  admin.destroy();
}

/** The first process: the certificate, the --serve child, then the --measure child; prints its result. */
async function runThreeProcesses({ self, tag, dirEnv, endpointsEnv }: HarnessOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `docsvc-${tag}-`));
  let server: ChildProcess | undefined;
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    server = spawn(process.execPath, [self, '--serve'], { env: { ...process.env, [dirEnv]: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    const endpoints = await started(server);
    const measuring = spawn(process.execPath, [self, '--measure'], {
      env: { ...process.env, [endpointsEnv]: endpoints, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const result = JSON.parse(await started(measuring));
    console.table(result.rows);
    console.log(JSON.stringify(result));
  } finally {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The process this one is, by its arguments: --serve, --measure (given the endpoints), or the first. */
export async function runBench(options: HarnessOptions, measure: (endpoints: Endpoints) => Promise<void>): Promise<void> {
  if (process.argv.includes('--serve')) await serveDynaliteWithTls(options.dirEnv);
  else if (process.argv.includes('--measure')) await measure(JSON.parse(process.env[options.endpointsEnv]!) as Endpoints);
  else await runThreeProcesses(options);
}
