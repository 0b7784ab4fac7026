import { afterAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { v7 as uuidv7 } from 'uuid';
import { Registry } from 'prom-client';
import { AppliedOrderStore } from '../../src/consumer/applied-orders.ts';
import { registerDeadLetterGauge } from '../../src/consumer/dead-letter-gauge.ts';
import { parseMessage, type QueueMessage } from '../../src/consumer/order-event-consumer.ts';
import { orderAcceptedEvent } from '../../src/orders/order-events.ts';
import type { Order, OrderAcceptedEvent } from '../../src/orders/schemas.ts';
import { consumeUntil, isolatedStack, newOrder, scanAll, waitFor, type IsolatedStack } from './support.ts';

// The downstream consumer on queues of its own: at most once per event id,
// at least once per event, poison messages to the dead-letter queue, and
// nothing applied that is not the event of an order placed by its tenant.

const stacks: IsolatedStack[] = [];
async function stack(overrides: Parameters<typeof isolatedStack>[0] = {}) {
  const created = await isolatedStack(overrides);
  stacks.push(created);
  return created;
}
afterAll(() => {
  for (const s of stacks) s.close();
});

function anOrder(): Order {
  return { orderId: uuidv7(), status: 'ACCEPTED', acceptedAt: new Date().toISOString(), ...newOrder(2) };
}

/** The event of an order really placed (in the stack's orders table) by `tenant`. */
async function placedEvent(s: IsolatedStack, tenant = 'public'): Promise<OrderAcceptedEvent> {
  const order = anOrder();
  expect(await s.orders.insert(tenant, order, Date.now())).toBe('created');
  return orderAcceptedEvent(tenant, order);
}

type Attributes = Record<string, MessageAttributeValue>;

/** The message attributes the publisher sets (SNS raw delivery hands them to SQS as they are). */
function attributesOf(event: Pick<OrderAcceptedEvent, 'tenant' | 'type'>): Attributes {
  return {
    type: { DataType: 'String', StringValue: event.type },
    tenant: { DataType: 'String', StringValue: event.tenant },
  };
}

/** An SQS message as raw delivery makes it of an event. */
function messageOf(event: OrderAcceptedEvent): QueueMessage {
  return { Body: JSON.stringify(event), MessageAttributes: attributesOf(event) };
}

async function send(s: IsolatedStack, body: string, attributes?: Attributes) {
  await s.aws.sqs.send(new SendMessageCommand({ QueueUrl: s.queueUrl, MessageBody: body, MessageAttributes: attributes }));
}

/** As SNS delivers without raw message delivery: the attributes inside the envelope. */
function snsEnvelope(event: OrderAcceptedEvent, topicArn: string): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: uuidv7(),
    TopicArn: topicArn,
    Message: JSON.stringify(event),
    Timestamp: new Date().toISOString(),
    MessageAttributes: { type: { Type: 'String', Value: event.type }, tenant: { Type: 'String', Value: event.tenant } },
  });
}

async function queueIsEmpty(s: IsolatedStack, url: string): Promise<string[]> {
  const { Messages = [] } = await s.aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }),
  );
  return Messages.map((message) => message.Body!);
}

/** Polls until `count` messages reached the dead-letter queue; their bodies, and what the polls counted. */
async function deadLetters(s: IsolatedStack, consumer: ReturnType<IsolatedStack['consumer']>, count: number) {
  const dead: string[] = [];
  const counted: Record<string, number> = {};
  await waitFor(
    async () => {
      for (const [outcome, n] of Object.entries(await consumer.pollOnce())) counted[outcome] = (counted[outcome] ?? 0) + n;
      dead.push(...(await queueIsEmpty(s, s.dlqUrl)));
      return dead.length >= count;
    },
    15_000,
    'the dead-letter queue',
  );
  return { dead, counted };
}

describe('the same event delivered more than once', () => {
  it('is applied once: one record, the other deliveries acknowledged as duplicates', async () => {
    const s = await stack();
    const event = await placedEvent(s);
    await send(s, JSON.stringify(event), attributesOf(event));
    await send(s, JSON.stringify(event), attributesOf(event));
    await send(s, snsEnvelope(event, s.config.ORDER_EVENTS_TOPIC_ARN)); // the same event inside an SNS envelope

    const consumer = s.consumer();
    const seen = await consumeUntil(consumer, (total) => (total.applied ?? 0) + (total.duplicate ?? 0) >= 3);
    expect(seen).toMatchObject({ applied: 1, duplicate: 2, invalid: 0, refused: 0, failed: 0, busy: 0 });
    expect(await queueIsEmpty(s, s.queueUrl)).toEqual([]);
    expect(consumer.appliedEvents.map((applied) => applied.id)).toEqual([event.id]);
    const records = await s.appliedRecords();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ orderId: event.data.orderId, eventId: event.id, tenant: 'public', items: event.data.items });
  });

  it('delivered to several consumers at the same moment, is applied by exactly one', async () => {
    const s = await stack();
    const event = await placedEvent(s);
    const consumers = Array.from({ length: 5 }, () => s.consumer());
    const outcomes = await Promise.all(consumers.map((consumer) => consumer.handle(messageOf(event))));
    const applied = outcomes.filter((outcome) => outcome.outcome === 'applied');
    expect(applied).toHaveLength(1);
    for (const outcome of outcomes) expect(['applied', 'duplicate', 'busy']).toContain(outcome.outcome);
    expect(await s.appliedRecords()).toHaveLength(1);
    // Those that found it busy succeed as duplicates when it comes back.
    expect(await consumers[0]!.handle(messageOf(event))).toEqual({ outcome: 'duplicate' });
  });
});

describe('a consumer that dies mid-way', () => {
  const LEASE_MS = 1500;

  it('between its claim and the side effect: the redelivery applies the event after the lease', async () => {
    const s = await stack();
    const event = await placedEvent(s);
    // A lease long enough that the first redelivery surely comes while it holds, even on a loaded machine.
    const claimedAt = Date.now();
    expect(await s.applied.claim(event, claimedAt, LEASE_MS)).toBe('claimed'); // …and then the process died
    const consumer = s.consumer();
    expect(await consumer.handle(messageOf(event))).toEqual({ outcome: 'busy' });
    await new Promise((resolve) => setTimeout(resolve, claimedAt + LEASE_MS + 50 - Date.now()));
    expect(await consumer.handle(messageOf(event))).toEqual({ outcome: 'applied' });
    expect(await s.appliedRecords()).toHaveLength(1);
  });

  it('between the side effect and marking the event applied: the redelivery does not repeat it', async () => {
    const s = await stack();
    const event = await placedEvent(s);
    const claimedAt = Date.now();
    expect(await s.applied.claim(event, claimedAt, LEASE_MS)).toBe('claimed');
    expect(await s.applied.record(event, Date.now())).toBe(true); // …and then the process died
    await new Promise((resolve) => setTimeout(resolve, claimedAt + LEASE_MS + 50 - Date.now()));
    const consumer = s.consumer();
    expect(await consumer.handle(messageOf(event))).toEqual({ outcome: 'duplicate' });
    expect(consumer.appliedEvents).toHaveLength(0);
    expect(await s.applied.claim(event, Date.now(), 300)).toBe('applied');
    expect(await s.appliedRecords()).toHaveLength(1);
  });

  it('a failure leaves the message for redelivery, and a later receive applies it', async () => {
    const s = await stack();
    const event = await placedEvent(s);
    await send(s, JSON.stringify(event), attributesOf(event));
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
    const bad = anOrder();
    const event = orderAcceptedEvent('public', bad);
    const poison = [
      'not json at all',
      JSON.stringify({ ...event, data: { ...bad, items: [{ sku: 'SKU-1', quantity: 0 }] } }),
      JSON.stringify({ ...event, type: 'order.cancelled' }),
      JSON.stringify({ Type: 'Notification', TopicArn: s.config.ORDER_EVENTS_TOPIC_ARN, Message: '{"truncated":' }),
    ];
    for (const body of poison) await send(s, body, attributesOf(event));
    const good = await placedEvent(s);
    await send(s, JSON.stringify(good), attributesOf(good));

    const consumer = s.consumer({ visibilityTimeoutSeconds: 30 });
    const { dead, counted } = await deadLetters(s, consumer, poison.length);
    expect(dead.sort()).toEqual([...poison].sort());
    expect(await queueIsEmpty(s, s.queueUrl)).toEqual([]);
    // Each was received exactly CONSUMER_MAX_RECEIVES times, without waiting out a visibility timeout.
    expect(counted.invalid).toBe(poison.length * 2);
    expect(consumer.appliedEvents.map((applied) => applied.id)).toEqual([good.id]);
    const records = await s.appliedRecords();
    expect(records.map((record) => record.orderId)).toEqual([good.data.orderId]);

    // …and the consumer's /metrics shows them waiting there.
    const registry = new Registry();
    registerDeadLetterGauge(registry, s.aws.sqs, s.config.ORDER_EVENTS_DLQ, { cacheMs: 0 });
    expect(await registry.metrics()).toMatch(new RegExp(`^order_events_dead_letters ${poison.length}$`, 'm'));
  });

  it('are recognised by the schema: the parser explains what is wrong', () => {
    const topic = 'arn:aws:sns:us-east-1:000000000000:order-events';
    const event = orderAcceptedEvent('public', anOrder());
    expect(parseMessage(messageOf(event), topic)).toEqual({ ok: true, event });
    expect(parseMessage({ Body: snsEnvelope(event, topic) }, topic)).toEqual({ ok: true, event });
    expect(parseMessage({ Body: '{' }, topic)).toEqual({ ok: false, outcome: 'invalid', reason: 'the body is not JSON' });
    expect(parseMessage({}, topic)).toMatchObject({ ok: false, outcome: 'invalid' });
    const wrong = parseMessage({ ...messageOf(event), Body: JSON.stringify({ ...event, data: { ...event.data, customerId: 'nope' } }) }, topic);
    expect(wrong).toMatchObject({ ok: false, outcome: 'invalid', reason: expect.stringContaining('/data/customerId') });
    const { id: _, ...noId } = event;
    expect(parseMessage({ ...messageOf(event), Body: JSON.stringify(noId) }, topic)).toMatchObject({ ok: false, outcome: 'invalid' });
    // Unknown CloudEvents extension attributes are tolerated.
    expect(parseMessage({ ...messageOf(event), Body: JSON.stringify({ ...event, traceparent: '00-abc-def-01' }) }, topic)).toMatchObject({ ok: true });
  });
});

// Crafted messages sent straight to the queue, as an attacker past the queue
// policy (or a misrouted subscription) would: each is refused, counted, and
// ends in the dead-letter queue, and nothing is applied.
describe('messages the consumer refuses', () => {
  type Crafted = (s: IsolatedStack) => Promise<{ body: string; attributes?: Attributes }>;
  const raw = (event: OrderAcceptedEvent, attributes = attributesOf(event)) => ({ body: JSON.stringify(event), attributes });
  const cases: [string, Crafted][] = [
    ['an event for a tenant that does not exist', async () => raw(orderAcceptedEvent(`ghost-${uuidv7()}`, anOrder()))],
    ['an event for an order nobody placed', async () => raw(orderAcceptedEvent('public', anOrder()))],
    ['an event whose id is not its order id', async (s) => raw({ ...(await placedEvent(s)), id: uuidv7() })],
    [
      "an event carrying another tenant's order id",
      async (s) => {
        const theirs = await placedEvent(s, 'tenant-a');
        return raw({ ...theirs, tenant: 'tenant-b' });
      },
    ],
    [
      'an event whose content differs from the stored order',
      async (s) => {
        const event = await placedEvent(s);
        return raw({ ...event, data: { ...event.data, items: [{ sku: 'SKU-9999', quantity: 100 }] } });
      },
    ],
    ['an SNS envelope naming another topic', async (s) => ({ body: snsEnvelope(await placedEvent(s), 'arn:aws:sns:us-east-1:000000000000:elsewhere') })],
    [
      'an SQS tenant attribute that disagrees with the body',
      async (s) => {
        const event = await placedEvent(s);
        return raw(event, attributesOf({ ...event, tenant: 'someone-else' }));
      },
    ],
    [
      'an SQS type attribute that disagrees with the body',
      async (s) => {
        const event = await placedEvent(s);
        return raw(event, { ...attributesOf(event), type: { DataType: 'String', StringValue: 'order.cancelled' } });
      },
    ],
    [
      'an SNS envelope whose attributes disagree with the body',
      async (s) => {
        const event = await placedEvent(s);
        const envelope = JSON.parse(snsEnvelope(event, s.config.ORDER_EVENTS_TOPIC_ARN));
        envelope.MessageAttributes.tenant.Value = 'someone-else';
        return { body: JSON.stringify(envelope) };
      },
    ],
    ['a message without the tenant and type attributes', async (s) => ({ body: JSON.stringify(await placedEvent(s)) })],
  ];

  it.each(cases)('%s', async (_name, craft) => {
    const s = await stack({ CONSUMER_MAX_RECEIVES: 2 });
    const crafted = await craft(s);
    await send(s, crafted.body, crafted.attributes);
    const registry = new Registry();
    const consumer = s.consumer({ registry });
    const { dead, counted } = await deadLetters(s, consumer, 1);
    expect(dead).toEqual([crafted.body]);
    expect(counted).toMatchObject({ refused: 2, applied: 0, duplicate: 0, invalid: 0 });
    expect(await registry.metrics()).toMatch(/^order_events_consumed_total\{result="refused"\} 2$/m);
    expect(consumer.appliedEvents).toEqual([]);
    expect(await s.appliedRecords()).toEqual([]);
    expect(await scanMarkers(s)).toEqual([]);
  });

  it("keeps tenants apart: another tenant's event with the same id is not taken for a duplicate", async () => {
    const s = await stack();
    const theirs = await placedEvent(s, 'tenant-a');
    const consumer = s.consumer();
    expect(await consumer.handle(messageOf(theirs))).toEqual({ outcome: 'applied' });
    // Same event id, tenant B: refused (B placed no such order), not acknowledged as a duplicate of A's.
    const forged = { ...theirs, tenant: 'tenant-b' };
    expect(await consumer.handle(messageOf(forged))).toMatchObject({ outcome: 'refused', reason: 'no such order for this tenant' });
    // The records are keyed by tenant: one tenant's marker never answers for another's event.
    expect(await s.applied.claim(forged, Date.now(), 1000)).toBe('claimed');
    expect(await s.appliedOrder('tenant-b', theirs.data.orderId)).toBeUndefined();
    expect(await s.appliedOrder('tenant-a', theirs.data.orderId)).toMatchObject({ tenant: 'tenant-a', eventId: theirs.id });
  });
});

function scanMarkers(s: IsolatedStack) {
  return scanAll(s.aws, s.config.CONSUMER_TABLE, 'EVENT#');
}
