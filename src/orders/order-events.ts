import { PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { EventPublisher, Outgoing, PublishResult } from '../outbox/outbox-relay.ts';
import { messageAttributesOf, messageCreation } from '../telemetry/message-spans.ts';
import { ORDER_ACCEPTED, type Order, type OrderAcceptedEvent } from './schemas.ts';

/**
 * The event of an accepted order, built only from the stored order: the API's
 * first attempt and every later republication by the relay send the same
 * bytes, with the same id, so consumers can deduplicate on it.
 */
export function orderAcceptedEvent(tenant: string, order: Order): OrderAcceptedEvent {
  return {
    specversion: '1.0',
    id: order.orderId,
    type: ORDER_ACCEPTED,
    source: '/orders',
    time: order.acceptedAt,
    datacontenttype: 'application/json',
    tenant,
    data: order,
  };
}

/** An order event to publish, with the trace context of the request that accepted its order. */
export type OutgoingEvent = Outgoing<OrderAcceptedEvent>;

const BATCH = 10; // the SNS PublishBatch maximum

export type OrderEventPublisherOptions = { sns: SNSClient; topicArn: string };

const destinationOf = (topicArn: string) => topicArn.split(':').at(-1) ?? topicArn;

/** Publishes events to the SNS topic, ten per call, and says which went out. */
export class OrderEventPublisher implements EventPublisher<OrderAcceptedEvent> {
  private readonly options: OrderEventPublisherOptions;

  constructor(options: OrderEventPublisherOptions) {
    this.options = options;
  }

  /**
   * Never throws: a failed call fails its whole batch, a refused entry only
   * itself. Whatever failed stays pending for the relay.
   */
  async publish(events: readonly OutgoingEvent[], timeoutMs: number): Promise<PublishResult> {
    const result: PublishResult = { published: [], failed: [] };
    const batches: OutgoingEvent[][] = [];
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

  private async publishBatch(outgoing: OutgoingEvent[], timeoutMs: number): Promise<PublishResult> {
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
