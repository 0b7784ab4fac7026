import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { DOCUMENT_DELETED } from './document-events.ts';

/** A delete committed in `region`, for the caches of the other regions (CloudEvents 1.0, structured JSON). */
export const DocumentDeletedEvent = Type.Object({
  specversion: Type.Literal('1.0'),
  id: Type.String({ minLength: 1, maxLength: 512 }),
  type: Type.Literal(DOCUMENT_DELETED),
  source: Type.Literal('/documents'),
  /** When the tombstone was committed: the `deletedAt` of the item. */
  time: Type.String({ format: 'date-time' }),
  tenant: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }),
  region: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]+$' }),
  data: Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }) }),
});
export type DocumentDeletedEvent = Static<typeof DocumentDeletedEvent>;

export function documentDeletedEvent(region: string, tenant: string, id: string, deletedAt: string): DocumentDeletedEvent {
  return {
    specversion: '1.0',
    // The same for every announcement of one delete, so a consumer may deduplicate on it.
    id: `${tenant}/${id}/${deletedAt}`,
    type: DOCUMENT_DELETED,
    source: '/documents',
    time: deletedAt,
    tenant,
    region,
    data: { id },
  };
}

const validator = Compile(DocumentDeletedEvent);

/** The event of an SQS body: raw delivery, or inside an SNS envelope. */
export function parseDeletedEvent(body: string | undefined): DocumentDeletedEvent | undefined {
  try {
    let value: unknown = JSON.parse(body ?? '');
    const envelope = value as { Type?: unknown; Message?: unknown } | null;
    if (envelope?.Type === 'Notification' && typeof envelope.Message === 'string') value = JSON.parse(envelope.Message);
    return validator.Check(value) && Number.isFinite(Date.parse(value.time)) ? value : undefined;
  } catch {
    return undefined;
  }
}

export type DeletionAnnouncer = { announce(tenant: string, id: string, deletedAt: string): Promise<void> };

/** Publishes this region's deletes on its document-events topic; throws when SNS did not take one. */
export class SnsDeletionAnnouncer implements DeletionAnnouncer {
  private readonly options: { sns: SNSClient; topicArn: string; region: string };

  constructor(options: { sns: SNSClient; topicArn: string; region: string }) {
    this.options = options;
  }

  async announce(tenant: string, id: string, deletedAt: string): Promise<void> {
    const event = documentDeletedEvent(this.options.region, tenant, id, deletedAt);
    await this.options.sns.send(
      new PublishCommand({
        TopicArn: this.options.topicArn,
        Message: JSON.stringify(event),
        MessageAttributes: {
          type: { DataType: 'String', StringValue: event.type },
          region: { DataType: 'String', StringValue: event.region },
        },
      }),
    );
  }
}
