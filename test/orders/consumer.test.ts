import { afterAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { v7 as uuidv7 } from 'uuid';
import { Registry } from 'prom-client';
import { AppliedOrderStore } from '../../src/consumer/applied-orders.ts';
import { registerDeadLetterGauge } from '../../src/consumer/dead-letter-gauge.ts';
import { parseEvent } from '../../src/consumer/order-event-consumer.ts';
import { orderAcceptedEvent } from '../../src/orders/order-events.ts';
import type { Order, OrderAcceptedEvent } from '../../src/orders/schemas.ts';
import { consumeUntil, isolatedStack, newOrder, waitFor, type IsolatedStack } from './support.ts';

// The downstream consumer on queues of its own: at most once per event id,
// at least once per event, poison messages to the dead-letter queue.

const stacks: IsolatedStack[] = [];
async function stack(overrides: Parameters<typeof isolatedStack>[0] = {}) {
  const created = await isolatedStack(overrides);
  stacks.push(created);
  return created;
}
afterAll(() => {
  for (const s of stacks) s.close();
});

function anEvent(): OrderAcceptedEvent {
  const order: Order = { orderId: uuidv7(), status: 'ACCEPTED', acceptedAt: new Date().toISOString(), ...newOrder(2) };
  return orderAcceptedEvent('public', order);
}

async function send(s: IsolatedStack, body: string) {
  await s.aws.sqs.send(new SendMessageCommand({ QueueUrl: s.queueUrl, MessageBody: body }));
}

/** As SNS delivers without raw message delivery. */
function snsEnvelope(event: OrderAcceptedEvent): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: uuidv7(),
    TopicArn: 'arn:aws:sns:us-east-1:000000000000:order-events',
    Message: JSON.stringify(event),
    Timestamp: new Date().toISOString(),
  });
}

async function queueIsEmpty(s: IsolatedStack, url: string): Promise<string[]> {
  const { Messages = [] } = await s.aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }),
  );
  return Messages.map((message) => message.Body!);
}

describe('the same event delivered more than once', () => {
  it('is applied once: one record, the other deliveries acknowledged as duplicates', async () => {
    const s = await stack();
    const event = anEvent();
    await send(s, JSON.stringify(event));
    await send(s, JSON.stringify(event));
    await send(s, snsEnvelope(event)); // the same event inside an SNS envelope

    const consumer = s.consumer();
    const seen = await consumeUntil(consumer, (total) => (total.applied ?? 0) + (total.duplicate ?? 0) >= 3);
    expect(seen).toMatchObject({ applied: 1, duplicate: 2, invalid: 0, failed: 0, busy: 0 });
    expect(await queueIsEmpty(s, s.queueUrl)).toEqual([]);
    expect(consumer.appliedEvents.map((applied) => applied.id)).toEqual([event.id]);
    const records = await s.appliedRecords();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ orderId: event.data.orderId, eventId: event.id, tenant: 'public', items: event.data.items });
  });

  it('delivered to several consumers at the same moment, is applied by exactly one', async () => {
    const s = await stack();
    const event = anEvent();
    const consumers = Array.from({ length: 5 }, () => s.consumer());
    const outcomes = await Promise.all(consumers.map((consumer) => consumer.handle(JSON.stringify(event))));
    const applied = outcomes.filter((outcome) => outcome.outcome === 'applied');
    expect(applied).toHaveLength(1);
    for (const outcome of outcomes) expect(['applied', 'duplicate', 'busy']).toContain(outcome.outcome);
    expect(await s.appliedRecords()).toHaveLength(1);
    // Those that found it busy succeed as duplicates when it comes back.
    expect(await consumers[0]!.handle(JSON.stringify(event))).toEqual({ outcome: 'duplicate' });
  });
});

describe('a consumer that dies mid-way', () => {
  const LEASE_MS = 1500;

  it('between its claim and the side effect: the redelivery applies the event after the lease', async () => {
    const s = await stack();
    const event = anEvent();
    // A lease long enough that the first redelivery surely comes while it holds, even on a loaded machine.
    const claimedAt = Date.now();
    expect(await s.applied.claim(event.id, claimedAt, LEASE_MS)).toBe('claimed'); // …and then the process died
    const consumer = s.consumer();
    expect(await consumer.handle(JSON.stringify(event))).toEqual({ outcome: 'busy' });
    await new Promise((resolve) => setTimeout(resolve, claimedAt + LEASE_MS + 50 - Date.now()));
    expect(await consumer.handle(JSON.stringify(event))).toEqual({ outcome: 'applied' });
    expect(await s.appliedRecords()).toHaveLength(1);
  });

  it('between the side effect and marking the event applied: the redelivery does not repeat it', async () => {
    const s = await stack();
    const event = anEvent();
    const claimedAt = Date.now();
    expect(await s.applied.claim(event.id, claimedAt, LEASE_MS)).toBe('claimed');
    expect(await s.applied.record(event, Date.now())).toBe(true); // …and then the process died
    await new Promise((resolve) => setTimeout(resolve, claimedAt + LEASE_MS + 50 - Date.now()));
    const consumer = s.consumer();
    expect(await consumer.handle(JSON.stringify(event))).toEqual({ outcome: 'duplicate' });
    expect(consumer.appliedEvents).toHaveLength(0);
    expect(await s.applied.claim(event.id, Date.now(), 300)).toBe('applied');
    expect(await s.appliedRecords()).toHaveLength(1);
  });

  it('a failure leaves the message for redelivery, and a later receive applies it', async () => {
    const s = await stack();
    const event = anEvent();
    await send(s, JSON.stringify(event));
    // A store whose table does not exist: every write fails.
    const broken = s.consumer({
      store: new AppliedOrderStore({ dynamo: s.aws.dynamo, table: 'no-such-table', dedupSeconds: 60 }),
      visibilityTimeoutSeconds: 1,
    });
    expect(await broken.pollOnce()).toMatchObject({ failed: 1, applied: 0 });
    const healthy = s.consumer({ visibilityTimeoutSeconds: 1 });
    const seen = await consumeUntil(healthy, () => healthy.appliedEvents.length === 1, 10_000);
    expect(seen).toMatchObject({ applied: 1 });
    expect(await s.appliedRecords()).toHaveLength(1);
  });
});

describe('poison messages', () => {
  it('end in the dead-letter queue after the configured receives, and nothing is applied', async () => {
    const s = await stack({ CONSUMER_MAX_RECEIVES: 2 });
    const bad = anEvent();
    const poison = [
      'not json at all',
      JSON.stringify({ ...bad, data: { ...bad.data, items: [{ sku: 'SKU-1', quantity: 0 }] } }),
      JSON.stringify({ ...bad, type: 'order.cancelled' }),
      JSON.stringify({ Type: 'Notification', Message: '{"truncated":' }),
    ];
    for (const body of poison) await send(s, body);
    const good = anEvent();
    await send(s, JSON.stringify(good));

    const consumer = s.consumer({ visibilityTimeoutSeconds: 30 });
    const dead: string[] = [];
    let invalid = 0;
    await waitFor(
      async () => {
        invalid += (await consumer.pollOnce()).invalid;
        dead.push(...(await queueIsEmpty(s, s.dlqUrl)));
        return dead.length === poison.length;
      },
      15_000,
      'the dead-letter queue',
    );
    expect(dead.sort()).toEqual([...poison].sort());
    expect(await queueIsEmpty(s, s.queueUrl)).toEqual([]);
    // Each was received exactly CONSUMER_MAX_RECEIVES times, without waiting out a visibility timeout.
    expect(invalid).toBe(poison.length * 2);
    expect(consumer.appliedEvents.map((event) => event.id)).toEqual([good.id]);
    const records = await s.appliedRecords();
    expect(records.map((record) => record.orderId)).toEqual([good.data.orderId]);

    // …and the consumer's /metrics shows them waiting there.
    const registry = new Registry();
    registerDeadLetterGauge(registry, s.aws.sqs, s.config.ORDER_EVENTS_DLQ, { cacheMs: 0 });
    expect(await registry.metrics()).toMatch(new RegExp(`^order_events_dead_letters ${poison.length}$`, 'm'));
  });

  it('are recognised by the schema: the parser explains what is wrong', () => {
    const event = anEvent();
    expect(parseEvent(JSON.stringify(event))).toEqual({ ok: true, event });
    expect(parseEvent(snsEnvelope(event))).toEqual({ ok: true, event });
    expect(parseEvent('{')).toEqual({ ok: false, reason: 'the body is not JSON' });
    expect(parseEvent(undefined)).toMatchObject({ ok: false });
    const wrong = parseEvent(JSON.stringify({ ...event, data: { ...event.data, customerId: 'nope' } }));
    expect(wrong).toMatchObject({ ok: false, reason: expect.stringContaining('/data/customerId') });
    const { id: _, ...noId } = event;
    expect(parseEvent(JSON.stringify(noId))).toMatchObject({ ok: false });
    // Unknown CloudEvents extension attributes are tolerated.
    expect(parseEvent(JSON.stringify({ ...event, traceparent: '00-abc-def-01' }))).toMatchObject({ ok: true });
  });
});
