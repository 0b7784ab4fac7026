// The lean DynamoDB client against the AWS SDK v3 (lib-dynamodb, as the
// service configured it before), over plain HTTP and over TLS: AWS is only
// ever reached over TLS, and a TLS record costs CPU the plain HTTP figures
// leave out. `node bench/dynamodb-tls.ts` (about a minute); nothing else of
// bench/ is involved.
//
// Three processes (bench/dynamodb-harness.ts), so that the client's CPU is
// measured alone:
//   this one   makes a self-signed certificate (openssl) and starts the other two;
//   --serve    dynalite, and a node:tls terminator in front of it;
//   --measure  the clients, with NODE_EXTRA_CA_CERTS trusting the certificate:
//              for each variant, PutItem then GetItem, 16 calls in flight,
//              process CPU (user + system) and wall time per call.
// Variants run interleaved, in several rounds; the medians are printed.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { LeanDynamoClient } from '../src/adapters/dynamodb-lean.ts';
import { createBenchTable, credentials, IN_FLIGHT, record, runBench, summarize, TABLE, timeCalls, WARMUP, type Endpoints, type Results } from './dynamodb-harness.ts';

const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_TLS_CALLS ?? 2000);

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

async function measure(endpoints: Endpoints) {
  await createBenchTable(endpoints.http);
  const variants = [
    ['sdk', 'http', sdkClient],
    ['lean', 'http', leanClient],
    ['sdk', 'https', sdkClient],
    ['lean', 'https', leanClient],
  ] as const;
  const results: Results = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, scheme, make] of variants) {
      const client = make(endpoints[scheme]);
      const prefix = `${name}-${scheme}-${round}`;
      await timeCalls(WARMUP, (i) => client.put(`${prefix}-warm-${i}`));
      for (const op of ['put', 'get'] as const) {
        const figures = await timeCalls(CALLS, (i) => (op === 'put' ? client.put(`${prefix}-${i}`) : client.get(`${prefix}-${i % CALLS}`)));
        record(results, `${op} ${name} ${scheme}`, figures);
      }
      client.destroy();
    }
  }
  // The machine is shared: each round's lean/SDK ratio compares neighbours in time, and the
  // lowest figure of a variant is the one least disturbed by other work.
  const rows = [...results].map(([key, figures]) => {
    const [op, client, scheme] = key.split(' ');
    return { op, client, scheme, ...summarize(figures, results.get(`${op} sdk ${scheme}`)!.cpuMs, 'ofSdkMedian') };
  });
  console.log(JSON.stringify({ rounds: ROUNDS, calls: CALLS, inFlight: IN_FLIGHT, node: process.version, rows }));
}

await runBench({ self: new URL(import.meta.url).pathname, tag: 'tls', dirEnv: 'BENCH_TLS_DIR', endpointsEnv: 'BENCH_TLS_ENDPOINTS' }, measure);
