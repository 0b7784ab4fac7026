import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Gauge, type Registry } from 'prom-client';
import { cachedFor } from '../cached.ts';

export const DEAD_LETTERS_GAUGE = 'order_events_dead_letters';

/**
 * Depth of the dead-letter queue, read when scraped (cached `cacheMs`): every
 * message there is an event nobody applied, so anything above 0 deserves an
 * alert. An unreadable queue keeps the last value rather than faking a zero.
 */
export function registerDeadLetterGauge(
  registry: Registry,
  sqs: SQSClient,
  queueName: string,
  options: { cacheMs?: number; timeoutMs?: number } = {},
): void {
  let queueUrl: string | undefined;

  const read = async (): Promise<number | undefined> => {
    const abortSignal = AbortSignal.timeout(options.timeoutMs ?? 2000);
    queueUrl ??= (await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }), { abortSignal })).QueueUrl;
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
      { abortSignal },
    );
    // Messages someone is looking at (received, not yet visible again) are still dead letters.
    const depth = Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    return Number.isFinite(depth) ? depth : undefined;
  };
  const depth = cachedFor(options.cacheMs ?? 5000, () => read().catch(() => undefined));

  new Gauge({
    name: DEAD_LETTERS_GAUGE,
    help: 'Messages in the dead-letter queue of the order events consumer',
    registers: [registry],
    async collect() {
      const value = await depth();
      if (value !== undefined) this.set(value);
    },
  });
}
