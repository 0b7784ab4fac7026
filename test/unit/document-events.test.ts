import { describe, expect, it } from 'vitest';
import { createdEvent, DocumentEvents, type DocumentEvent } from '../../src/documents/document-events.ts';
import type { EventPublisher, Outgoing, PublishResult } from '../../src/outbox/outbox-relay.ts';

// The API's own publication of document events, against a publisher that
// records its calls (SNS itself is exercised in test/documents/document-events.test.ts).

function recorder(fail: (event: DocumentEvent) => boolean = () => false) {
  const calls: string[][] = [];
  const publisher: EventPublisher<DocumentEvent> = {
    async publish(events: readonly Outgoing<DocumentEvent>[]): Promise<PublishResult> {
      calls.push(events.map(({ event }) => event.subject));
      const failed = events.filter(({ event }) => fail(event)).map(({ event }) => event.id);
      return { published: events.map(({ event }) => event.id).filter((id) => !failed.includes(id)), failed };
    },
  };
  return { calls, publisher };
}

const event = (id: string) =>
  createdEvent('acme', { id, status: 'ACTIVE', contentType: 'text/plain', size: 1, checksum: '0'.repeat(64), createdAt: '2026-12-06T00:00:00.000Z' });

function events(publisher: EventPublisher<DocumentEvent>, marked: string[], now = () => 0) {
  return new DocumentEvents({
    publisherOf: () => publisher,
    published: async (key) => void marked.push(key),
    publishTimeoutMs: 1000,
    lingerMs: 60_000,
    log: { warn() {} },
    now,
  });
}

describe('DocumentEvents', () => {
  it('publishes events sent together in one call of ten at most, and marks each one published', async () => {
    const { calls, publisher } = recorder();
    const marked: string[] = [];
    const sender = events(publisher, marked);
    for (let i = 0; i < 12; i++) sender.send(`acme#d${i}`, event(`d${i}`), {});
    // Ten fill a call at once; the last two wait for the linger, or for close().
    expect(calls).toEqual([Array.from({ length: 10 }, (_, i) => `d${i}`)]);
    await sender.close();
    expect(calls).toEqual([Array.from({ length: 10 }, (_, i) => `d${i}`), ['d10', 'd11']]);
    expect(marked.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `acme#d${i}`).sort());
  });

  it('marks only what was published, and after a failure leaves the next sends to the relay for a while', async () => {
    let clock = 0;
    const { calls, publisher } = recorder((failed) => failed.subject === 'bad');
    const marked: string[] = [];
    const sender = events(publisher, marked, () => clock);
    sender.send('acme#good', event('good'), {});
    sender.send('acme#bad', event('bad'), {});
    await sender.close();
    expect(marked).toEqual(['acme#good']);
    sender.send('acme#later', event('later'), {});
    await sender.close();
    expect(calls).toEqual([['good', 'bad']]);
    clock = 5001;
    sender.send('acme#after', event('after'), {});
    await sender.close();
    expect(calls).toEqual([['good', 'bad'], ['after']]);
  });
});
