import type { Request } from 'autocannon';

// What each scenario sends. bench/run.ts decides when and how long; the load
// generator process (bench/load.ts) turns a scenario into autocannon
// requests with the builders below. The functions run in the load process.

export type ScenarioName =
  | 'ceiling'
  | 'ceiling-same-response'
  | 'get-hot'
  | 'get-hot-b'
  | 'get-cold'
  | 'get-warm'
  | 'get-link'
  | 'post-documents-small'
  | 'post-orders'
  | 'orders-burst'
  | 'put-documents'
  | 'transfer-64mb'
  | 'resumable-64mb'
  | 'get-hot-untraced'
  | 'get-hot-traced-1pct'
  | 'get-hot-traced-all'
  | 'post-orders-untraced'
  | 'post-orders-traced-1pct'
  | 'post-orders-traced-all'
  | 'list-documents'
  | 'post-documents-events-off'
  | 'post-documents-events-on'
  | 'get-hot-auth-off'
  | 'get-hot-api-key';

export type Scenario = {
  name: ScenarioName;
  /** One line for the table and the README. */
  measures: string;
  /** Counted in the results table (put-documents only prepares get-cold). */
  reported: boolean;
};

export const SCENARIOS: Scenario[] = [
  { name: 'ceiling', measures: 'bare Fastify 5, one GET route answering a constant small JSON (separate process)', reported: true },
  {
    name: 'ceiling-same-response',
    measures: "bare Fastify 5 answering get-hot's headers and 1 KiB body, captured from the API at the start (same process as the ceiling)",
    reported: true,
  },
  { name: 'get-hot', measures: 'GET /documents/{id} of one 1 KiB document, always a cache hit', reported: true },
  { name: 'get-hot-b', measures: 'get-hot against an API of another build (BENCH_API_ENTRY_B), interleaved with get-hot: an A/B of a change', reported: false },
  {
    name: 'post-documents-small',
    measures: 'POST /documents, 256-byte JSON body, a unique Idempotency-Key per request',
    reported: true,
  },
  {
    name: 'get-cold',
    measures: 'GET /documents/{id}, every id read once, none in any cache (misses counted from Cache-Status)',
    reported: true,
  },
  {
    name: 'get-warm',
    measures: 'GET /documents/{id}, every id read once, in Redis but not in the process memory (Redis hits counted from /metrics)',
    reported: true,
  },
  {
    name: 'list-documents',
    measures: 'GET /documents?limit=100, walks of 5 pages (the first, then 4 by their cursors) over the 500 newest documents of the tenant, created for it',
    reported: true,
  },
  {
    name: 'get-link',
    measures: 'GET /documents/{id}/link of one 20 KiB document (in S3, not inline): a hot document\'s direct link, signed once per expiry bucket',
    reported: true,
  },
  { name: 'post-orders', measures: 'POST /orders, every payload unique (no dedup replay)', reported: true },
  { name: 'orders-burst', measures: 'POST /orders at a fixed rate, unique payloads, arrivals spread over each second', reported: true },
  {
    name: 'transfer-64mb',
    measures: 'PUT and GET of a 64 MiB document (MB/s, API CPU per MB) against the SDK alone with the S3 emulator; 10 such uploads at once (API peak RSS)',
    reported: true,
  },
  {
    name: 'resumable-64mb',
    measures:
      'A 64 MiB document as a tus upload in 8 MiB appends against the same bytes in one PUT (MB/s, API CPU per MB), through a fresh API process; the CPU of the append that completes an upload of 1 MiB and of 1026 MiB',
    reported: true,
  },
  { name: 'put-documents', measures: 'PUT /documents/{id} of new ids: fills the get-cold pool when needed', reported: false },
  // The cost of tracing: three API processes of one build, measured in alternating slices.
  { name: 'get-hot-untraced', measures: 'get-hot, tracing off (no OTLP endpoint: no SDK), interleaved with the two below', reported: true },
  { name: 'get-hot-traced-1pct', measures: 'get-hot, tracing on, parentbased_traceidratio 0.01, spans to an OTLP sink', reported: true },
  { name: 'get-hot-traced-all', measures: 'get-hot, tracing on, every request traced (ratio 1.0), spans to an OTLP sink', reported: true },
  { name: 'post-orders-untraced', measures: 'post-orders, tracing off, interleaved with the two below', reported: true },
  { name: 'post-orders-traced-1pct', measures: 'post-orders, tracing on, parentbased_traceidratio 0.01', reported: true },
  { name: 'post-orders-traced-all', measures: 'post-orders, tracing on, every request traced (ratio 1.0)', reported: true },
  // The cost of document events: two API processes of one build, measured in alternating slices.
  { name: 'post-documents-events-off', measures: 'post-documents-small, DOCUMENT_EVENTS=off (no event writes, no publications), interleaved with the one below', reported: true },
  {
    name: 'post-documents-events-on',
    measures: 'post-documents-small, DOCUMENT_EVENTS=on (the event pending on the item, published to SNS and marked after the answer)',
    reported: true,
  },
  // What authentication and the per-tenant rate limit cost a hot read: two API processes of one build, in alternating slices.
  { name: 'get-hot-auth-off', measures: 'get-hot, AUTH_MODE=none (no key, no rate limit), interleaved with the one below', reported: true },
  {
    name: 'get-hot-api-key',
    measures: 'get-hot, AUTH_MODE=api-key with a Bearer key: the key checked, and the tenant counted by the rate limit (batched to Redis far from its limit)',
    reported: true,
  },
];

/** What run.ts asks the load process to do. */
export type LoadSpec = {
  scenario: ScenarioName;
  phase: 'warmup' | 'measure' | 'prepare';
  /** http://127.0.0.1:PORT of the target. */
  origin: string;
  /** Upper bound of the phase, in seconds. */
  seconds: number;
  connections: number;
  /** Fixed overall rate (req/s), spread over `waves` staggered autocannon instances. */
  rate?: number;
  waves?: number;
  /** Sent with every request (get-hot: an Authorization header). */
  headers?: Record<string, string>;
  /** get-hot, get-link: the document; get-cold, get-warm: the ids to read, in order, once each. */
  hotId?: string;
  ids?: string[];
  /** put-documents: how many new documents, and their id prefix. */
  count?: number;
  idPrefix?: string;
  /** list-documents: the page size, and how many pages a walk reads (the first, then by cursors). */
  limit?: number;
  pages?: number;
  /** Per-run tag, so keys and payloads never collide with an earlier run against the same stack. */
  runTag: string;
  /**
   * Phases with the same series add up: the answer covers all of them so
   * far (latency samples, counts, seconds). For interleaved measurements.
   */
  series?: string;
};

/** Mutable per-phase state of the load process, read back into the result. */
export type PhaseState = {
  /** Ids of documents created with a 2xx answer (post-documents-small, put-documents). */
  createdIds: string[];
  /** Cache-Status of GET answers: `fwd=miss` counts as a miss, anything else with 2xx as a hit. */
  cacheHits: number;
  cacheMisses: number;
  /** get-cold: how many ids were handed out (sent), so run.ts never reuses one. */
  idsSent: number;
  /** Cache-Status of the response being reported right now (read by the latency recorder). */
  lastCacheStatus: string | undefined;
  /** list-documents: pages answered 200, the items they held, and the cursors still to follow (any connection takes the next). */
  listedPages: number;
  listedItems: number;
  cursors: { cursor: string; page: number }[];
};

export function newPhaseState(): PhaseState {
  return { createdIds: [], cacheHits: 0, cacheMisses: 0, idsSent: 0, lastCacheStatus: undefined, listedPages: 0, listedItems: 0, cursors: [] };
}

// Process-wide counters: unique payloads across every phase of the run.
let documentSequence = 0;
let orderSequence = 0;

const SMALL_DOCUMENT_BYTES = 256;

function smallDocument(runTag: string, n: number): string {
  const head = JSON.stringify({ bench: 'post-documents-small', run: runTag, n, pad: '' });
  return head.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, SMALL_DOCUMENT_BYTES - head.length))}"`);
}

/** A valid order whose canonical payload differs for every n (< 10^8). */
export function orderBody(n: number): string {
  return JSON.stringify({
    customerId: `CUST-${String(n % 100_000_000).padStart(8, '0')}`,
    items: [
      { sku: `SKU-${1000 + (n % 9000)}`, quantity: 1 + (n % 100) },
      { sku: 'SKU-BENCH-2', quantity: 2 },
    ],
  });
}

function cacheStatusOf(headers: Record<string, string | string[]>): string | undefined {
  const value = headers['cache-status'] ?? headers['Cache-Status'];
  return Array.isArray(value) ? value.join(', ') : value;
}

function countCache(state: PhaseState, status: number, headers: Record<string, string>) {
  const cacheStatus = cacheStatusOf(headers);
  state.lastCacheStatus = cacheStatus;
  if (status < 200 || status > 299) return;
  if (cacheStatus?.includes('fwd=miss')) state.cacheMisses++;
  else state.cacheHits++;
}

/** The autocannon request list of a scenario. */
export function requestsFor(spec: LoadSpec, state: PhaseState): Request[] {
  switch (spec.scenario) {
    case 'ceiling':
      return [{ method: 'GET', path: '/' }];

    case 'ceiling-same-response':
      return [{ method: 'GET', path: '/same' }];

    case 'get-hot':
      return [
        {
          method: 'GET',
          path: `/documents/${spec.hotId}`,
          ...(spec.headers ? { headers: spec.headers } : {}),
          onResponse: (status, _body, _context, headers) => countCache(state, status, headers),
        },
      ];

    case 'get-link':
      return [{ method: 'GET', path: `/documents/${spec.hotId}/link` }];

    case 'get-cold':
    case 'get-warm': {
      const ids = spec.ids ?? [];
      return [
        {
          method: 'GET',
          setupRequest: (request) => {
            // Wraps around only if run.ts asked for more requests than ids:
            // those re-reads show up as hits and flag the figure.
            const id = ids[state.idsSent++ % ids.length];
            request.path = `/documents/${id}`;
            return request;
          },
          onResponse: (status, _body, _context, headers) => countCache(state, status, headers),
        },
      ];
    }

    case 'post-documents-small':
      return [
        {
          method: 'POST',
          path: '/documents',
          setupRequest: (request) => {
            const n = documentSequence++;
            request.headers = {
              ...request.headers,
              'content-type': 'application/json',
              'idempotency-key': `bench-${spec.runTag}-${n}`,
            };
            request.body = smallDocument(spec.runTag, n);
            return request;
          },
          onResponse: (status, body) => {
            if (status === 201) state.createdIds.push((JSON.parse(body) as { id: string }).id);
          },
        },
      ];

    case 'put-documents': {
      const prefix = spec.idPrefix ?? `cold-${spec.runTag}`;
      return [
        {
          method: 'PUT',
          setupRequest: (request, context) => {
            const n = documentSequence++;
            context.id = `${prefix}-${n}`;
            request.path = `/documents/${context.id}`;
            request.headers = { ...request.headers, 'content-type': 'application/json' };
            request.body = smallDocument(spec.runTag, n);
            return request;
          },
          onResponse: (status, _body, context) => {
            if (status === 201) state.createdIds.push(context.id as string);
          },
        },
      ];
    }

    case 'list-documents': {
      const limit = spec.limit ?? 100;
      const pages = spec.pages ?? 1;
      return [
        {
          method: 'GET',
          setupRequest: (request, context) => {
            // A cursor another answer left, or the first page of a new walk. autocannon's context
            // starts afresh for every request of a one-request list, so walks cannot live there.
            const next = state.cursors.shift();
            context.page = next?.page ?? 1;
            request.path = next ? `/documents?limit=${limit}&cursor=${encodeURIComponent(next.cursor)}` : `/documents?limit=${limit}`;
            return request;
          },
          onResponse: (status, body, context) => {
            if (status !== 200) return;
            const page = JSON.parse(body) as { items: unknown[]; next?: string };
            state.listedPages++;
            state.listedItems += page.items.length;
            const number = context.page as number;
            if (page.next && number < pages) state.cursors.push({ cursor: page.next, page: number + 1 });
          },
        },
      ];
    }

    case 'post-orders':
    case 'orders-burst':
      return [
        {
          method: 'POST',
          path: '/orders',
          setupRequest: (request) => {
            request.headers = { ...request.headers, 'content-type': 'application/json' };
            request.body = orderBody(orderSequence++);
            return request;
          },
        },
      ];

    default:
      // The tracing and events rows are get-hot, post-orders and post-documents-small sent to other API processes (suite.ts).
      throw new Error(`${spec.scenario} is a row of results, not requests: send get-hot, post-orders or post-documents-small`);
  }
}
