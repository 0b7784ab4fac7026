import { describe, expect, it } from 'vitest';
import { LingeringPublisher } from '../../src/outbox/lingering-publisher.ts';
import type { EventPublisher, Outgoing, PublishResult } from '../../src/outbox/outbox-relay.ts';

// Events handed over one at a time go out in shared calls, and each caller
// learns what became of its own (SNS itself: test/orders/outbox.test.ts).

type Event = { id: string };

function recorder(answer: (events: readonly Outgoing<Event>[]) => Promise<PublishResult>) {
  const calls: string[][] = [];
  const publisher: EventPublisher<Event> = {
    publish(events) {
      calls.push(events.map(({ event }) => event.id));
      return answer(events);
    },
  };
  return { calls, publisher };
}

const allPublished = async (events: readonly Outgoing<Event>[]): Promise<PublishResult> => ({ published: events.map(({ event }) => event.id), failed: [] });

describe('LingeringPublisher', () => {
  it('sends the events of one linger together, ten to a call at most, and answers each caller', async () => {
    const { calls, publisher } = recorder(allPublished);
    const lingering = new LingeringPublisher(publisher, { timeoutMs: 1000, lingerMs: 20 });
    const answers = Array.from({ length: 12 }, (_, i) => lingering.publish({ event: { id: `e${i}` } }));
    // Ten fill a call at once; the other two wait for the linger.
    expect(calls).toEqual([Array.from({ length: 10 }, (_, i) => `e${i}`)]);
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 12 }, () => ({ published: true })));
    expect(calls).toEqual([Array.from({ length: 10 }, (_, i) => `e${i}`), ['e10', 'e11']]);
  });

  it('answers published only for the events the publisher says went out, with its error for the others', async () => {
    const refused = new Error('SNS refused an entry');
    const { publisher } = recorder(async (events) => ({
      published: events.filter(({ event }) => event.id !== 'bad').map(({ event }) => event.id),
      failed: ['bad'],
      error: refused,
    }));
    const lingering = new LingeringPublisher(publisher, { timeoutMs: 1000, lingerMs: 1 });
    const [good, bad] = await Promise.all([lingering.publish({ event: { id: 'good' } }), lingering.publish({ event: { id: 'bad' } })]);
    expect(good).toEqual({ published: true });
    expect(bad).toEqual({ published: false, error: refused });
  });

  it('a publisher that throws leaves every event of its call unpublished, and never rejects', async () => {
    const broken = new Error('broken');
    const { publisher } = recorder(() => Promise.reject(broken));
    const lingering = new LingeringPublisher(publisher, { timeoutMs: 1000, lingerMs: 1 });
    expect(await Promise.all([lingering.publish({ event: { id: 'a' } }), lingering.publish({ event: { id: 'b' } })])).toEqual([
      { published: false, error: broken },
      { published: false, error: broken },
    ]);
  });

  it('passes the deadline and each event\'s trace context to the publisher', async () => {
    const seen: { timeoutMs: number; origins: unknown[] }[] = [];
    const publisher: EventPublisher<Event> = {
      async publish(events, timeoutMs) {
        seen.push({ timeoutMs, origins: events.map(({ origin }) => origin) });
        return allPublished(events);
      },
    };
    const lingering = new LingeringPublisher(publisher, { timeoutMs: 750, lingerMs: 1 });
    await lingering.publish({ event: { id: 'a' }, origin: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    expect(seen).toEqual([{ timeoutMs: 750, origins: [{ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }] }]);
  });
});
