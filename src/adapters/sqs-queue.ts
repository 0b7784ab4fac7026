import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/**
 * An SQS queue as the consumers use it: long polls that can be cut short,
 * and one call to settle what a poll brought (deleted when done, visible
 * again at once when it can never be handled, so that the redrive policy
 * moves it to the dead-letter queue after the configured receives).
 */
export class SqsQueue {
  private readonly sqs: SQSClient;
  private readonly name: string;
  private url: string | undefined;
  private receiving: AbortController | undefined;

  constructor(sqs: SQSClient, queue: { url: string } | { name: string }) {
    this.sqs = sqs;
    this.name = 'name' in queue ? queue.name : queue.url;
    if ('url' in queue) this.url = queue.url;
  }

  async resolveUrl(): Promise<string> {
    if (this.url) return this.url;
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: this.name }));
    if (!QueueUrl) throw new Error(`queue ${this.name} has no URL`);
    this.url = QueueUrl;
    return QueueUrl;
  }

  /** Up to 10 messages, waiting up to `waitTimeSeconds` for the first; cut short by abort(). */
  async receive(waitTimeSeconds: number, visibilityTimeoutSeconds: number, messageAttributeNames: readonly string[] = []): Promise<Message[]> {
    const queueUrl = await this.resolveUrl();
    const controller = new AbortController();
    this.receiving = controller;
    try {
      const { Messages } = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: waitTimeSeconds,
          VisibilityTimeout: visibilityTimeoutSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          ...(messageAttributeNames.length > 0 ? { MessageAttributeNames: [...messageAttributeNames] } : {}),
        }),
        // A long poll outlasts the clients' usual request timeout on purpose.
        { abortSignal: controller.signal, requestTimeout: (waitTimeSeconds + 5) * 1000 },
      );
      return Messages ?? [];
    } finally {
      this.receiving = undefined;
    }
  }

  /** Ends the long poll in progress, if any. */
  abort(): void {
    this.receiving?.abort();
  }

  /** Deletes `done`, makes `poison` visible again at once; returns what could not be settled (a redelivery, not a loss). */
  async settle(done: readonly Message[], poison: readonly Message[]): Promise<unknown[]> {
    const queueUrl = await this.resolveUrl();
    const entries = (list: readonly Message[]) => list.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle! }));
    const calls: Promise<{ Failed?: unknown[] }>[] = [];
    if (done.length > 0) calls.push(this.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries(done) })));
    if (poison.length > 0) {
      calls.push(
        this.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: entries(poison).map((entry) => ({ ...entry, VisibilityTimeout: 0 })),
          }),
        ),
      );
    }
    const problems: unknown[] = [];
    for (const outcome of await Promise.allSettled(calls)) {
      if (outcome.status === 'rejected') problems.push(outcome.reason);
      else if (outcome.value.Failed?.length) problems.push(...outcome.value.Failed);
    }
    return problems;
  }
}
