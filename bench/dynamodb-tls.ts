// The lean DynamoDB client against the AWS SDK v3 (lib-dynamodb, as the
// service configured it before), over plain HTTP and over TLS: AWS is only
// ever reached over TLS, and a TLS record costs CPU the plain HTTP figures
// leave out. `node bench/dynamodb-tls.ts` (about a minute); nothing else of
// bench/ is involved.
//
// Three processes, so that the client's CPU is measured alone:
//   this one   makes a self-signed certificate (openssl) and starts the other two;
//   --serve    dynalite, and a node:tls terminator in front of it;
//   --measure  the clients, with NODE_EXTRA_CA_CERTS trusting the certificate:
//              for each variant, PutItem then GetItem, 16 calls in flight,
//              process CPU (user + system) and wall time per call.
// Variants run interleaved, in several rounds; the medians are printed.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { LeanDynamoClient } from '../src/adapters/dynamodb-lean.ts';

const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_TLS_CALLS ?? 2000);
const WARMUP = 300;
const IN_FLIGHT = 16;
const TABLE = 'bench';
const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const self = new URL(import.meta.url).pathname;

async function serve() {
  const { default: dynalite } = await import('dynalite');
  const dynamo: Server = dynalite({ createTableMs: 0 });
  dynamo.listen(0, '127.0.0.1');
  await once(dynamo, 'listening');
  const dynamoPort = (dynamo.address() as AddressInfo).port;
  const dir = process.env.BENCH_TLS_DIR!;
  const tls = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (socket) => {
    const upstream = createConnection(dynamoPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  tls.listen(0, '127.0.0.1');
  await once(tls, 'listening');
  console.log(JSON.stringify({ http: `http://127.0.0.1:${dynamoPort}`, https: `https://127.0.0.1:${(tls.address() as AddressInfo).port}` }));
}

type Client = { put(pk: string): Promise<unknown>; get(pk: string): Promise<unknown>; destroy(): void };

function sdkClient(endpoint: string): Client {
  const agentOptions = { keepAlive: true, maxSockets: 128 };
  const base = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 1000,
      requestTimeout: 5000,
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  });
  const documents = DynamoDBDocumentClient.from(base);
  return {
    put: (pk) => documents.send(new PutCommand({ TableName: TABLE, Item: { pk, size: 1234, name: 'a small item', tags: ['x', 'y'] } })),
    get: (pk) => documents.send(new GetCommand({ TableName: TABLE, Key: { pk }, ConsistentRead: true })),
    destroy: () => base.destroy(),
  };
}

function leanClient(endpoint: string): Client {
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint, connectTimeoutMs: 1000, requestTimeoutMs: 5000, maxAttempts: 3, credentials: async () => credentials });
  return {
    put: (pk) => lean.putItem({ TableName: TABLE, Item: { pk, size: 1234, name: 'a small item', tags: ['x', 'y'] } }),
    get: (pk) => lean.getItem({ TableName: TABLE, Key: { pk }, ConsistentRead: true }),
    destroy: () => lean.destroy(),
  };
}

/** `calls` calls, `IN_FLIGHT` at a time: process CPU and wall time per call, in ms. */
async function run(calls: number, call: (i: number) => Promise<unknown>) {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < calls) await call(next++);
    }),
  );
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000 / calls, wallMs: wall / calls };
}

async function measure() {
  const endpoints: { http: string; https: string } = JSON.parse(process.env.BENCH_TLS_ENDPOINTS!);
  const admin = new DynamoDBClient({ region: 'us-east-1', endpoint: endpoints.http, credentials });
  await admin.send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  admin.destroy();
  const variants = [
    ['sdk', 'http', sdkClient],
    ['lean', 'http', leanClient],
    ['sdk', 'https', sdkClient],
    ['lean', 'https', leanClient],
  ] as const;
  const results = new Map<string, { cpuMs: number[]; wallMs: number[] }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, scheme, make] of variants) {
      const client = make(endpoints[scheme]);
      const prefix = `${name}-${scheme}-${round}`;
      await run(WARMUP, (i) => client.put(`${prefix}-warm-${i}`));
      for (const op of ['put', 'get'] as const) {
        const figures = await run(CALLS, (i) => (op === 'put' ? client.put(`${prefix}-${i}`) : client.get(`${prefix}-${i % CALLS}`)));
        const key = `${op} ${name} ${scheme}`;
        const entry = results.get(key) ?? { cpuMs: [], wallMs: [] };
        entry.cpuMs.push(figures.cpuMs);
        entry.wallMs.push(figures.wallMs);
        results.set(key, entry);
      }
      client.destroy();
    }
  }
  // The machine is shared: each round's lean/SDK ratio compares neighbours in time, and the
  // lowest figure of a variant is the one least disturbed by other work.
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const round3 = (value: number) => Math.round(value * 1000) / 1000;
  const rows = [...results].map(([key, { cpuMs, wallMs }]) => {
    const [op, client, scheme] = key.split(' ');
    const sdk = results.get(`${op} sdk ${scheme}`)!.cpuMs;
    return {
      op,
      client,
      scheme,
      cpuMsMin: round3(Math.min(...cpuMs)),
      cpuMsMedian: round3(median(cpuMs)),
      cpuMsMax: round3(Math.max(...cpuMs)),
      ofSdkMedian: round3(median(cpuMs.map((value, round) => value / sdk[round]!))),
      wallMsMedian: round3(median(wallMs)),
    };
  });
  console.log(JSON.stringify({ rounds: ROUNDS, calls: CALLS, inFlight: IN_FLIGHT, node: process.version, rows }));
}

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

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'docsvc-tls-'));
  let server: ChildProcess | undefined;
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    server = spawn(process.execPath, [self, '--serve'], { env: { ...process.env, BENCH_TLS_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    const endpoints = await started(server);
    const client = spawn(process.execPath, [self, '--measure'], {
      env: { ...process.env, BENCH_TLS_ENDPOINTS: endpoints, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const result = JSON.parse(await started(client));
    console.table(result.rows);
    console.log(JSON.stringify(result));
  } finally {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--serve')) await serve();
else if (process.argv.includes('--measure')) await measure();
else await main();
