import { describe, expect, it } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentDb } from '../../src/adapters/aws.ts';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.ts';

// A write whose answer was lost: the conditional put committed, the answer
// never came back (a timeout), and the client's automatic retry of the same
// put is refused by its own condition. Found by the DynamoDB blackhole test
// (dynamodb-blackhole.test.ts), where it turned a first POST /documents with a
// fresh Idempotency-Key into 409 IDEMPOTENCY_KEY_IN_USE, and kept that key
// locked for IDEMPOTENCY_LOCK_SECONDS. Here the same situation, made
// deterministic with a table that loses the answer of the first put.

class ConditionalCheckFailedException extends Error {
  override name = 'ConditionalCheckFailedException';
}

/** A one-table DynamoDB whose first conditional put commits and then "times out"; its retry then fails its condition. */
function losingFirstAnswer(): DocumentDb & { items: Map<string, Record<string, unknown>> } {
  const items = new Map<string, Record<string, unknown>>();
  let puts = 0;
  const send = async (command: { input: Record<string, any> }) => {
    const input = command.input;
    if (command instanceof PutCommand) {
      puts += 1;
      const item = input.Item as Record<string, unknown>;
      if (puts === 1) {
        items.set(item.pk as string, item); // committed...
        // ...and the client retried after its timeout: the retry meets its own item.
      }
      throw new ConditionalCheckFailedException('The conditional request failed');
    }
    if ('Key' in input) return { Item: items.get(input.Key.pk) };
    throw new Error(`unexpected command ${command.constructor.name}`);
  };
  return { send: send as unknown as DocumentDb['send'], items };
}

describe('a conditional write whose answer was lost, retried by the client', () => {
  it('an idempotency claim recognises its own record: started, not "in flight"', async () => {
    const dynamo = losingFirstAnswer();
    const store = new IdempotencyStore({ dynamo, table: 'keys', ttlSeconds: 3600, lockSeconds: 30 });
    const claim = await store.claim('public#POST /documents#key-1', 'fingerprint', 'doc-1');
    expect(claim).toMatchObject({ kind: 'started', resourceId: 'doc-1' });
    expect(dynamo.items.get('public#POST /documents#key-1')).toMatchObject({ status: 'IN_PROGRESS', token: (claim as { token: string }).token });
  });

  it('another request with the same key still sees it in flight', async () => {
    const dynamo = losingFirstAnswer();
    const store = new IdempotencyStore({ dynamo, table: 'keys', ttlSeconds: 3600, lockSeconds: 30 });
    await store.claim('public#POST /documents#key-2', 'fingerprint', 'doc-2');
    expect(await store.claim('public#POST /documents#key-2', 'fingerprint', 'doc-3')).toEqual({ kind: 'in-flight' });
  });
});
