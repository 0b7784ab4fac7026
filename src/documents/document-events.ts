import { Type } from 'typebox';
import { v5 as uuidv5 } from 'uuid';
import { itemParser, type DynamoDb, type Item } from '../adapters/dynamodb.ts';
import type { FastifyBaseLogger } from 'fastify';
import { LingeringPublisher, type Publication } from '../outbox/lingering-publisher.ts';
import type { EventPublisher } from '../outbox/outbox-relay.ts';
import { OutboxStore } from '../outbox/outbox-store.ts';
import { SnsEventPublisher } from '../outbox/sns-event-publisher.ts';
import { currentTraceContext, type TraceCarrier } from '../telemetry/message-spans.ts';
import type { DocumentMetadata } from './schemas.ts';

export const DOCUMENT_CREATED = 'document.created';
export const DOCUMENT_DELETED = 'document.deleted';

/**
 * What other systems learn of documents, on the document-changes topic: a
 * CloudEvents 1.0 structured JSON message, with the tenant as an extension
 * (and, with the type, as a message attribute, for subscription filters).
 * A created event carries the document's metadata as it was committed; a
 * deleted one, its id and when. Its `id` is fixed per document and type, so
 * that a republished event is recognised as the same.
 */
export type DocumentEvent = {
  specversion: '1.0';
  id: string;
  type: typeof DOCUMENT_CREATED | typeof DOCUMENT_DELETED;
  source: '/documents';
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  tenant: string;
  data: DocumentMetadata | { id: string; deletedAt: string };
};

/** A namespace of this service's own, for event ids derived from what they are about. */
const EVENT_NAMESPACE = 'a6c8f1f2-93b4-4f7e-8d55-2f0e7f5b9c31';

export function documentEventId(tenant: string, id: string, type: DocumentEvent['type']): string {
  return uuidv5(`${tenant}#${id}#${type}`, EVENT_NAMESPACE);
}

const Created = Type.Object({
  tenant: Type.String(),
  id: Type.String(),
  contentType: Type.String(),
  size: Type.Integer(),
  checksum: Type.String(),
  createdAt: Type.String(),
  retainUntil: Type.Optional(Type.String()),
});
const Deleted = Type.Object({ kind: Type.Literal('event'), tenant: Type.String(), id: Type.String(), deletedAt: Type.String() });
const parseCreated = itemParser('document (for its event)', Created);
const parseDeleted = itemParser('deletion event', Deleted);

/**
 * What the `outbox` index projects of an item: what the relay reads to
 * publish its event (never the content, which may sit in the item).
 */
export const DOCUMENT_EVENT_ATTRIBUTES = [
  'eventStatus',
  'leaseUntil',
  'eventRegion',
  'traceContext',
  'kind',
  'tenant',
  'id',
  'contentType',
  'size',
  'checksum',
  'createdAt',
  'retainUntil',
  'deletedAt',
] as const;

/** The event an outbox item stands for: a document's item (created), or the item a delete wrote for it (deleted). */
export function documentEventOf(item: Item): DocumentEvent {
  if (item.kind === 'event') {
    const event = parseDeleted(item);
    return deletedEvent(event.tenant, event.id, event.deletedAt);
  }
  const document = parseCreated(item);
  return createdEvent(document.tenant, {
    id: document.id,
    status: 'ACTIVE',
    contentType: document.contentType,
    size: document.size,
    checksum: document.checksum,
    createdAt: document.createdAt,
    ...(document.retainUntil ? { retainUntil: document.retainUntil } : {}),
  });
}

export function createdEvent(tenant: string, metadata: DocumentMetadata): DocumentEvent {
  const { legalHold: _hold, ...committed } = metadata;
  return envelope(tenant, metadata.id, DOCUMENT_CREATED, metadata.createdAt, { ...committed, legalHold: 'OFF' });
}

export function deletedEvent(tenant: string, id: string, deletedAt: string): DocumentEvent {
  return envelope(tenant, id, DOCUMENT_DELETED, deletedAt, { id, deletedAt });
}

function envelope(tenant: string, id: string, type: DocumentEvent['type'], time: string, data: DocumentEvent['data']): DocumentEvent {
  return { specversion: '1.0', id: documentEventId(tenant, id, type), type, source: '/documents', subject: id, time, datacontenttype: 'application/json', tenant, data };
}

/**
 * The document events still to publish, on the items of the documents table
 * (the sparse `outbox` index): those of this region only, so that the relay
 * of each region publishes what its region committed.
 */
export function documentOutbox(dynamo: DynamoDb, table: string, region: string): OutboxStore<DocumentEvent> {
  return new OutboxStore({ dynamo, table, eventOf: documentEventOf, only: { attribute: 'eventRegion', value: region } });
}

/** Document events, to the document-changes topic. */
export class DocumentEventPublisher extends SnsEventPublisher<DocumentEvent> {}

export type DocumentEventsOptions = {
  /** Where an event goes: the topic of its document's home region (of one region, the one topic). */
  publisherOf(event: DocumentEvent): EventPublisher<DocumentEvent>;
  /** Marks an event published, on the item its outbox entry is (at the item's home). */
  published(key: string, now: number): Promise<void>;
  publishTimeoutMs: number;
  /** After a failed publication, how long the API leaves publishing to the relay (5 s). */
  pauseMs?: number;
  /** How long an event waits for others to share its PublishBatch (5 ms). */
  lingerMs?: number;
  log: Pick<FastifyBaseLogger, 'warn'>;
  now?: () => number;
};

/**
 * The API's own attempt to publish a document event right after the write
 * that made it pending: not awaited by the answer (the event is in the
 * outbox already; the relay publishes whatever this does not). Events sent
 * within `lingerMs` of each other go out in one PublishBatch per topic
 * (LingeringPublisher): under load a call carries up to ten, which is most
 * of what an event costs the API (bench/README.md, the events rows). After
 * a failure it leaves publishing to the relay for `pauseMs`, rather than
 * have every create and delete try a dead event bus.
 */
export class DocumentEvents {
  private readonly options: DocumentEventsOptions;
  private readonly now: () => number;
  private pausedUntil = 0;
  /** Of several regions, one per home's topic: each event to its home's. */
  private readonly lingering = new Map<EventPublisher<DocumentEvent>, LingeringPublisher<DocumentEvent>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(options: DocumentEventsOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** The trace context of the request now, for the event and for whoever publishes it. */
  origin(): TraceCarrier {
    return currentTraceContext();
  }

  send(key: string, event: DocumentEvent, origin: TraceCarrier): void {
    if (this.now() < this.pausedUntil) return;
    const publication = this.lingeringOf(event)
      .publish({ event, origin })
      .then((result) => this.settle(key, event, result))
      .finally(() => this.inFlight.delete(publication));
    this.inFlight.add(publication);
  }

  /** Publishes what is queued now; resolves when every publication so far has ended (a drain waits on it). */
  async close(): Promise<void> {
    for (const lingering of this.lingering.values()) lingering.flush();
    await Promise.all(this.inFlight);
  }

  private lingeringOf(event: DocumentEvent): LingeringPublisher<DocumentEvent> {
    const publisher = this.options.publisherOf(event);
    let lingering = this.lingering.get(publisher);
    if (!lingering) {
      lingering = new LingeringPublisher(publisher, { timeoutMs: this.options.publishTimeoutMs, lingerMs: this.options.lingerMs });
      this.lingering.set(publisher, lingering);
    }
    return lingering;
  }

  private async settle(key: string, event: DocumentEvent, result: Publication): Promise<void> {
    if (!result.published) {
      // One line as the pause begins, not one per event of the batch that failed.
      if (this.now() >= this.pausedUntil) this.options.log.warn({ err: result.error, eventId: event.id }, 'document events not published: left to the relay');
      this.pausedUntil = this.now() + (this.options.pauseMs ?? 5000);
      return;
    }
    await this.options
      .published(key, this.now())
      .catch((err: unknown) => this.options.log.warn({ err, eventId: event.id }, 'document event published but not marked: the relay publishes it again'));
  }
}
