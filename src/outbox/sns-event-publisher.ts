import { PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import { messageAttributesOf, messageCreation } from '../telemetry/message-spans.ts';
import type { EventPublisher, Outgoing, PublishResult } from './outbox-relay.ts';

/** What the topic's subscribers filter on, besides the CloudEvent itself. */
export type PublishedEvent = { id: string; type: string; tenant: string };

const BATCH = 10; // the SNS PublishBatch maximum

export type SnsEventPublisherOptions = { sns: SNSClient; topicArn: string };

const destinationOf = (topicArn: string) => topicArn.split(':').at(-1) ?? topicArn;

/**
 * Publishes CloudEvents (structured JSON) to an SNS topic, ten per call, with
 * the message attributes `type` and `tenant` (for subscription filter
 * policies) and the trace context of the request that made each event; says
 * which went out.
 */
export class SnsEventPublisher<E extends PublishedEvent> implements EventPublisher<E> {
  private readonly options: SnsEventPublisherOptions;

  constructor(options: SnsEventPublisherOptions) {
    this.options = options;
  }

  /**
   * Never throws: a failed call fails its whole batch, a refused entry only
   * itself. Whatever failed stays pending for the relay.
   */
  async publish(events: readonly Outgoing<E>[], timeoutMs: number): Promise<PublishResult> {
    const result: PublishResult = { published: [], failed: [] };
    const batches: Outgoing<E>[][] = [];
    for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
    await Promise.all(
      batches.map(async (batch) => {
        const outcome = await this.publishBatch(batch, timeoutMs);
        result.published.push(...outcome.published);
        result.failed.push(...outcome.failed);
        result.error ??= outcome.error;
      }),
    );
    return result;
  }

  private async publishBatch(outgoing: Outgoing<E>[], timeoutMs: number): Promise<PublishResult> {
    const batch = outgoing.map(({ event }) => event);
    const destination = destinationOf(this.options.topicArn);
    // Entry ids only need to be unique within the call; positions are.
    const entries = outgoing.map(({ event, origin }, index) => ({
      Id: `e${index}`,
      Message: JSON.stringify(event),
      MessageAttributes: {
        type: { DataType: 'String', StringValue: event.type },
        tenant: { DataType: 'String', StringValue: event.tenant },
        // W3C trace context (traceparent, tracestate) when traced: the consumer continues it.
        ...messageAttributesOf(
          messageCreation(destination, { 'messaging.system': 'aws.sns', 'messaging.destination.name': destination, 'messaging.message.id': event.id }, origin),
        ),
      },
    }));
    try {
      const answer = await this.options.sns.send(
        new PublishBatchCommand({ TopicArn: this.options.topicArn, PublishBatchRequestEntries: entries }),
        { abortSignal: AbortSignal.timeout(timeoutMs) },
      );
      const ok = new Set((answer.Successful ?? []).map((entry) => entry.Id));
      const refused = answer.Failed?.[0];
      return {
        published: batch.filter((_, index) => ok.has(`e${index}`)).map((event) => event.id),
        failed: batch.filter((_, index) => !ok.has(`e${index}`)).map((event) => event.id),
        ...(refused ? { error: new Error(`SNS refused an entry: ${refused.Code} ${refused.Message ?? ''}`) } : {}),
      };
    } catch (error) {
      return { published: [], failed: batch.map((event) => event.id), error };
    }
  }
}
