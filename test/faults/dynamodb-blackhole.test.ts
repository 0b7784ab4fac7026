import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { randomInt, randomUUID } from 'node:crypto';
import { FaultProxy } from '../support/fault-proxy.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { CALL_DEADLINE_MS, callSlackMs, loopLateness, report, SHORT_AWS_DEADLINES, sleep, stats, watchUnhandled } from './support.ts';

// Fault 3: the DynamoDB emulator blackholed, under a steady stream of writes
// of every kind. The app reaches DynamoDB through a proxy; S3, SNS and Redis
// stay healthy. Timeouts are shortened by configuration so that the deadline
// of a write is small, and computed from the same configuration:
//
//   one DynamoDB call gives up after AWS_MAX_ATTEMPTS attempts of at most
//   AWS_REQUEST_TIMEOUT_MS each, with a full-jitter pause of at most
//   50 ms × 2^n before retry n = 0, 1, … (the SDK's standard retry strategy,
//   which src/adapters/dynamodb-lean.ts uses; 1 s × 2^n when throttled).
//
// A write that starts while DynamoDB is blackholed fails on its first call
// (the claim of its key or its conditional put), so its 503 must come within
// that one-call deadline. A write already past its first call when the
// blackhole starts makes at most two more calls (the write, and the release
// of its idempotency key): twice the deadline.

type Kind = 'put-small' | 'put-large' | 'post' | 'post-key' | 'order';
const KINDS: Kind[] = ['put-small', 'put-large', 'post', 'post-key', 'order'];

type Write = {
  kind: Kind;
  startedAt: number;
  ms: number;
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
  /** What to read back: the document id (with its bytes) or the order id. */
  id: string | undefined;
  payload: Buffer | string;
  contentType: string;
  key?: string;
};

let proxy: FaultProxy;
let app: FastifyInstance;
/** Reads back and retries once the outage is over: another instance, straight to DynamoDB, with the default deadlines. */
let afterwards: FastifyInstance | undefined;

beforeAll(async () => {
  proxy = await FaultProxy.start(inject('stackEnv').AWS_ENDPOINT_URL_DYNAMODB!);
  app = await testApp({ config: { ...SHORT_AWS_DEADLINES, AWS_ENDPOINT_URL_DYNAMODB: proxy.url() } });
});

afterAll(async () => {
  await afterwards?.close();
  await app?.close();
  await proxy?.close();
});

function customerId() {
  return `CUST-${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
}

async function write(kind: Kind): Promise<Write> {
  const startedAt = performance.now();
  let response;
  let id: string | undefined;
  let payload: Buffer | string;
  let contentType = 'application/octet-stream';
  let key: string | undefined;
  switch (kind) {
    case 'put-small':
    case 'put-large':
      id = uniqueId('ddb-blackhole');
      payload = kind === 'put-small' ? `small ${id}` : Buffer.alloc(20_000, id); // 20 KB goes to S3
      response = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload, headers: { 'content-type': contentType } });
      break;
    case 'post':
    case 'post-key':
      payload = `posted ${randomUUID()}`;
      key = kind === 'post-key' ? randomUUID() : undefined;
      response = await app.inject({
        method: 'POST',
        url: '/documents',
        payload,
        headers: { 'content-type': contentType, ...(key ? { 'idempotency-key': key } : {}) },
      });
      if (response.statusCode < 300) id = response.json().id;
      break;
    case 'order':
      contentType = 'application/json';
      payload = JSON.stringify({ customerId: customerId(), items: [{ sku: 'SKU-FAULT', quantity: randomInt(1, 100) }] });
      response = await app.inject({ method: 'POST', url: '/orders', payload, headers: { 'content-type': contentType } });
      if (response.statusCode < 300) id = response.json().orderId;
      break;
  }
  const body = response.headers['content-type']?.includes('json') ? response.json() : undefined;
  return {
    kind,
    startedAt,
    ms: performance.now() - startedAt,
    status: response.statusCode,
    retryAfter: response.headers['retry-after'] as string | undefined,
    code: body?.code,
    id,
    payload,
    contentType,
    ...(key ? { key } : {}),
  };
}

async function inParallel<T>(items: T[], width: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await run(items[next++]!);
  }));
}

async function readiness(): Promise<number> {
  return (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
}

const DOCUMENTS_TABLE = testConfig().DOCUMENTS_TABLE;

/**
 * Whether the store answers the call /health makes, through the app's own
 * client, within /health's deadline: after the outage a starved emulator,
 * working off the writes that waited, can take seconds to, and /health can
 * only follow it.
 */
async function storeAnswers(): Promise<boolean> {
  try {
    await app.aws.dynamo.getItem({ TableName: DOCUMENTS_TABLE, Key: { pk: '__health__' } }, { abortSignal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

/** What /health says of storage: 'down' comes with a 503. */
async function storage(): Promise<string> {
  const response = await app.inject({ method: 'GET', url: '/health' });
  const state = response.json().storage;
  expect(response.statusCode, state).toBe(state === 'down' ? 503 : 200);
  return state;
}

describe('DynamoDB blackholed', () => {
  it('writes answer 503 + Retry-After within the deadline, never 2xx without a commit; readiness stays 200, /health says storage down and back', { timeout: 60_000 }, async () => {
    const unhandled = watchUnhandled();
    // A client retries a 503 as told, after the outage too.
    const untilAnswered = async (send: () => Promise<LightMyRequestResponse>) => {
      for (let attempt = 1; ; attempt++) {
        const answer = await send();
        if (answer.statusCode !== 503 || attempt === 10) return answer;
      }
    };
    const lateness = loopLateness();
    const writes: Write[] = [];
    let stop = false;
    const workers = Array.from({ length: 5 }, async (_, worker) => {
      for (let i = 0; !stop; i++) writes.push(await write(KINDS[(worker + i) % KINDS.length]!));
    });

    await sleep(1000);
    expect(await readiness()).toBe(200);
    expect(await storage()).toBe('ok');
    proxy.blackhole();
    const blackholedAt = performance.now();
    // Readiness is asked all along; the blackhole lasts until /health has
    // seen it and every kind of write has met it (a 503 started and ended inside).
    const readinessSeen: number[] = [];
    let downAfterMs: number | undefined;
    const everyKindRefused = () =>
      KINDS.every((kind) => writes.some((w) => w.kind === kind && w.status === 503 && w.startedAt >= blackholedAt));
    while (downAfterMs === undefined || !everyKindRefused()) {
      if (performance.now() - blackholedAt > 30_000) throw new Error(`blackhole not seen in 30 s: /health after ${downAfterMs} ms`);
      readinessSeen.push(await readiness());
      if (downAfterMs === undefined && (await storage()) === 'down') downAfterMs = performance.now() - blackholedAt;
      await sleep(100);
    }
    proxy.pass();
    const passedAt = performance.now();
    let upAfterMs: number | undefined;
    let storeBackAfterMs: number | undefined;
    while (upAfterMs === undefined) {
      if (performance.now() - passedAt > 30_000) throw new Error('/health did not see storage back in 30 s');
      readinessSeen.push(await readiness());
      if (storeBackAfterMs === undefined && (await storeAnswers())) storeBackAfterMs = performance.now() - passedAt;
      if ((await storage()) === 'ok') upAfterMs = performance.now() - passedAt;
      else await sleep(100);
    }
    // /health saw it first: then it did not lag the store.
    storeBackAfterMs ??= upAfterMs;
    // A write that succeeds after the return: the stream is flowing again.
    const resumedFrom = writes.length;
    while (!writes.slice(resumedFrom).some((w) => w.status < 300 && w.startedAt >= passedAt)) {
      if (performance.now() - passedAt > 20_000) throw new Error('no write succeeded within 20 s of DynamoDB returning');
      await sleep(50);
    }
    stop = true;
    await Promise.all(workers);

    const byStatus = (list: Write[]) => Object.fromEntries(Object.entries(Object.groupBy(list, (w) => String(w.status))).map(([s, l]) => [s, l!.length]));
    const unavailable = writes.filter((w) => w.status === 503);
    const startedBlackholed = unavailable.filter((w) => w.startedAt >= blackholedAt && w.startedAt + w.ms <= passedAt);
    const caughtInFlight = unavailable.filter((w) => w.startedAt < blackholedAt);
    report('dynamodb blackhole: configured deadline of one call, ms', { CALL_DEADLINE_MS, ...SHORT_AWS_DEADLINES });
    report('dynamodb blackhole: writes by status', byStatus(writes));
    report('dynamodb blackhole: 503s of writes started while blackholed, ms', stats(startedBlackholed.map((w) => w.ms)));
    report('dynamodb blackhole: 503s of writes caught in flight, ms', stats(caughtInFlight.map((w) => w.ms)));
    report('dynamodb blackhole: /health storage down after ms, ok again after ms (the store answering again after ms); readiness answers seen', {
      downAfterMs,
      upAfterMs,
      storeBackAfterMs,
      readiness: readinessSeen.length,
    });
    // Each bound is a deadline plus slack that grows with the event loop's worst lag in this run.
    const slack = callSlackMs(lateness.maxMs());
    lateness.stop();
    report('dynamodb blackhole: slack of the bounds, ms', Math.round(slack));

    // Only successes and 503s: no 500, no 409 from a write's own retried claim.
    for (const w of writes) expect([200, 201, 503], `${w.kind}: ${w.status} ${w.code}`).toContain(w.status);
    // Every kind of write met the outage, and each was refused the same way.
    for (const kind of KINDS) expect(startedBlackholed.some((w) => w.kind === kind), kind).toBe(true);
    // DynamoDB never answered: each 503 says so (a refused connection would be SERVICE_UNAVAILABLE).
    for (const w of unavailable) {
      expect(w.code).toBe('DEPENDENCY_TIMEOUT');
      expect(Number(w.retryAfter)).toBeGreaterThan(0);
    }
    for (const w of startedBlackholed) expect(w.ms, w.kind).toBeLessThan(CALL_DEADLINE_MS + slack);
    for (const w of caughtInFlight) expect(w.ms, w.kind).toBeLessThan(2 * CALL_DEADLINE_MS + slack);

    // Readiness is this pod's, not the store's: 200 throughout, so the load
    // balancer keeps sending clients to the 503 + Retry-After above. /health
    // followed the store, within one probe (1 s deadline, 1 s cache) each way:
    // down after the blackhole began, ok after the store answered again.
    expect(readinessSeen.filter((status) => status !== 200)).toEqual([]);
    expect(downAfterMs!).toBeLessThan(2000 + 2 * slack);
    expect(upAfterMs - storeBackAfterMs).toBeLessThan(2000 + 2 * slack);

    // What follows checks the stores, not the deadlines: through an instance with the default ones, as a
    // client's retry may reach any. With this test's 250 ms, a machine beside two busy loops once made
    // ten retries in a row earn a 503 DEPENDENCY_TIMEOUT from the emulator.
    const service = (afterwards = await testApp());
    // No 2xx for a write that did not commit: every acknowledged write is there, intact.
    const acknowledged = writes.filter((w) => w.status < 300);
    await inParallel(acknowledged, 8, async (w) => {
      if (w.kind === 'order') {
        const read = await untilAnswered(() => service.inject({ method: 'GET', url: `/orders/${w.id}` }));
        expect(read.statusCode, w.id).toBe(200);
        expect(JSON.parse(w.payload as string)).toMatchObject({ customerId: read.json().customerId, items: read.json().items });
      } else {
        const read = await untilAnswered(() => service.inject({ method: 'GET', url: `/documents/${w.id}` }));
        expect(read.statusCode, w.id).toBe(200);
        expect(read.rawPayload.equals(Buffer.from(w.payload))).toBe(true);
      }
    });
    // A 503 may hide a commit (the answer was lost, not the write): the
    // client's retry of it is safe. A PUT retried gives 201, or 200 if the
    // first attempt had committed; a POST retried with its key gives one document.
    let committedAnyway = 0;
    const keyRetries: number[] = [];
    const postAgain = (w: Write) =>
      untilAnswered(() =>
        service.inject({ method: 'POST', url: '/documents', payload: w.payload, headers: { 'content-type': w.contentType, 'idempotency-key': w.key! } }),
      );
    await inParallel(unavailable, 8, async (w) => {
      if (w.kind === 'put-small' || w.kind === 'put-large') {
        const retry = await untilAnswered(() => service.inject({ method: 'PUT', url: `/documents/${w.id}`, payload: w.payload, headers: { 'content-type': w.contentType } }));
        expect([200, 201], `${retry.statusCode} ${retry.body}`).toContain(retry.statusCode);
        if (retry.statusCode === 200) committedAnyway += 1;
      }
      if (w.kind === 'post-key') {
        const retry = await postAgain(w);
        // 409: the failed attempt's key is still locked (it could not be released while DynamoDB was away); bounded by IDEMPOTENCY_LOCK_SECONDS.
        expect([201, 409], `${retry.statusCode} ${retry.body}`).toContain(retry.statusCode);
        keyRetries.push(retry.statusCode);
        if (retry.statusCode === 201) {
          const again = await postAgain(w);
          expect(again.json().id).toBe(retry.json().id);
        }
      }
    });
    report('dynamodb blackhole: retries after recovery', { putsThatHadCommitted: committedAnyway, postWithKeyRetryStatuses: keyRetries });
    expect(acknowledged.length).toBeGreaterThan(10);
    expect(unhandled.errors).toEqual([]);
    unhandled.stop();
  });
});
