// The lean DynamoDB client's HTTP transport: undici against node:http, in the
// same run, for PutItem, GetItem and UpdateItem, over plain HTTP and over TLS.
// `node bench/dynamodb-transport.ts` (a minute or two); nothing else of bench/
// is involved. BENCH_TRANSPORT_ROUNDS, BENCH_TRANSPORT_CALLS and
// BENCH_TRANSPORT_SCHEMES=http,https change the run.
//
// Three processes, so that the client's CPU is measured alone:
//   this one   makes a self-signed certificate (openssl) and starts the other two;
//   --serve    dynalite, and a node:tls terminator in front of it;
//   --measure  the clients, with NODE_EXTRA_CA_CERTS trusting the certificate:
//              for each variant, PutItem, GetItem then UpdateItem, 16 calls in
//              flight, process CPU (user + system) and wall time per call.
// Variants run interleaved, in several rounds (the machine is shared); each
// round's undici/node:http ratio compares neighbours in time, and the medians
// are printed.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LeanDynamoClient, type LeanDynamoOptions } from '../src/adapters/dynamodb-lean.ts';

const ROUNDS = Number(process.env.BENCH_TRANSPORT_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_TRANSPORT_CALLS ?? 2000);
const SCHEMES = (process.env.BENCH_TRANSPORT_SCHEMES ?? 'http,https').split(',') as ('http' | 'https')[];
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
  const dir = process.env.BENCH_TRANSPORT_DIR!;
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

type Op = 'put' | 'get' | 'update';
const OPS: Op[] = ['put', 'get', 'update'];

function client(endpoint: string, transport: NonNullable<LeanDynamoOptions['transport']>) {
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint, connectTimeoutMs: 1000, requestTimeoutMs: 5000, maxAttempts: 3, credentials: async () => credentials, transport });
  const call = (op: Op, pk: string): Promise<unknown> => {
    switch (op) {
      case 'put':
        return lean.putItem({ TableName: TABLE, Item: { pk, size: 1234, name: 'a small item', tags: ['x', 'y'] } });
      case 'get':
        return lean.getItem({ TableName: TABLE, Key: { pk }, ConsistentRead: true });
      case 'update':
        return lean.updateItem({
          TableName: TABLE,
          Key: { pk },
          UpdateExpression: 'SET #s = :s',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#s': 'state' },
          ExpressionAttributeValues: { ':s': 'PUBLISHED' },
        });
    }
  };
  return { call, destroy: () => lean.destroy() };
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
  const endpoints: { http: string; https: string } = JSON.parse(process.env.BENCH_TRANSPORT_ENDPOINTS!);
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
  const transports = ['node:http', 'undici'] as const;
  const results = new Map<string, { cpuMs: number[]; wallMs: number[] }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const scheme of SCHEMES) {
      // Alternate which transport goes first, round by round.
      for (const transport of round % 2 === 0 ? transports : [...transports].reverse()) {
        const lean = client(endpoints[scheme], transport);
        const prefix = `${transport}-${scheme}-${round}`;
        await run(WARMUP, (i) => lean.call('put', `${prefix}-warm-${i}`));
        for (const op of OPS) {
          const figures = await run(CALLS, (i) => lean.call(op, `${prefix}-${i}`));
          const key = `${op} ${scheme} ${transport}`;
          const entry = results.get(key) ?? { cpuMs: [], wallMs: [] };
          entry.cpuMs.push(figures.cpuMs);
          entry.wallMs.push(figures.wallMs);
          results.set(key, entry);
        }
        lean.destroy();
      }
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const round3 = (value: number) => Math.round(value * 1000) / 1000;
  const rows = [...results].map(([key, { cpuMs, wallMs }]) => {
    const [op, scheme, transport] = key.split(' ');
    const base = results.get(`${op} ${scheme} node:http`)!.cpuMs;
    return {
      op,
      scheme,
      transport,
      cpuMsMin: round3(Math.min(...cpuMs)),
      cpuMsMedian: round3(median(cpuMs)),
      cpuMsMax: round3(Math.max(...cpuMs)),
      ofNodeHttpMedian: round3(median(cpuMs.map((value, round) => value / base[round]!))),
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
  const dir = mkdtempSync(join(tmpdir(), 'docsvc-transport-'));
  let server: ChildProcess | undefined;
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    server = spawn(process.execPath, [self, '--serve'], { env: { ...process.env, BENCH_TRANSPORT_DIR: dir }, stdio: ['ignore', 'pipe', 'inherit'] });
    const endpoints = await started(server);
    const measuring = spawn(process.execPath, [self, '--measure'], {
      env: { ...process.env, BENCH_TRANSPORT_ENDPOINTS: endpoints, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
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

if (process.argv.includes('--serve')) await serve();
else if (process.argv.includes('--measure')) await measure();
else await main();
