// The lean DynamoDB client's HTTP transport: undici against node:http, in the
// same run, for PutItem, GetItem and UpdateItem, over plain HTTP and over TLS.
// `node bench/dynamodb-transport.ts` (a minute or two); nothing else of bench/
// is involved. BENCH_TRANSPORT_ROUNDS, BENCH_TRANSPORT_CALLS and
// BENCH_TRANSPORT_SCHEMES=http,https change the run.
//
// Three processes (bench/dynamodb-harness.ts), so that the client's CPU is
// measured alone:
//   this one   makes a self-signed certificate (openssl) and starts the other two;
//   --serve    dynalite, and a node:tls terminator in front of it;
//   --measure  the clients, with NODE_EXTRA_CA_CERTS trusting the certificate:
//              for each variant, PutItem, GetItem then UpdateItem, 16 calls in
//              flight, process CPU (user + system) and wall time per call.
// Variants run interleaved, in several rounds (the machine is shared); each
// round's undici/node:http ratio compares neighbours in time, and the medians
// are printed.

import { LeanDynamoClient, type LeanDynamoOptions } from '../src/adapters/dynamodb-lean.ts';
import { createBenchTable, credentials, IN_FLIGHT, record, runBench, summarize, TABLE, timeCalls, WARMUP, type Endpoints, type Results } from './dynamodb-harness.ts';

const ROUNDS = Number(process.env.BENCH_TRANSPORT_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_TRANSPORT_CALLS ?? 2000);
const SCHEMES = (process.env.BENCH_TRANSPORT_SCHEMES ?? 'http,https').split(',') as ('http' | 'https')[];

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

async function measure(endpoints: Endpoints) {
  await createBenchTable(endpoints.http);
  const transports = ['node:http', 'undici'] as const;
  const results: Results = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const scheme of SCHEMES) {
      // Alternate which transport goes first, round by round.
      for (const transport of round % 2 === 0 ? transports : [...transports].reverse()) {
        const lean = client(endpoints[scheme], transport);
        const prefix = `${transport}-${scheme}-${round}`;
        await timeCalls(WARMUP, (i) => lean.call('put', `${prefix}-warm-${i}`));
        for (const op of OPS) {
          const figures = await timeCalls(CALLS, (i) => lean.call(op, `${prefix}-${i}`));
          record(results, `${op} ${scheme} ${transport}`, figures);
        }
        lean.destroy();
      }
    }
  }
  const rows = [...results].map(([key, figures]) => {
    const [op, scheme, transport] = key.split(' ');
    return { op, scheme, transport, ...summarize(figures, results.get(`${op} ${scheme} node:http`)!.cpuMs, 'ofNodeHttpMedian') };
  });
  console.log(JSON.stringify({ rounds: ROUNDS, calls: CALLS, inFlight: IN_FLIGHT, node: process.version, rows }));
}

await runBench({ self: new URL(import.meta.url).pathname, tag: 'transport', dirEnv: 'BENCH_TRANSPORT_DIR', endpointsEnv: 'BENCH_TRANSPORT_ENDPOINTS' }, measure);
