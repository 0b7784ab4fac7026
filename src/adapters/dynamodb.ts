import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * What the stores need of DynamoDB, and nothing more: five data-plane
 * operations on plain JavaScript values (marshalled by the client). Input
 * and output fields are DynamoDB's own names. A failed condition rejects
 * with a ConditionalCheckFailedException (see `conditionalWrite`); DynamoDB
 * unreachable, slow or throttling rejects with the service's coded errors
 * (SERVICE_UNAVAILABLE, DEPENDENCY_TIMEOUT); anything else is a bug.
 */
export interface DynamoDb {
  getItem(input: GetItemInput, options?: CallOptions): Promise<{ Item?: Item }>;
  putItem(input: PutItemInput, options?: CallOptions): Promise<void>;
  updateItem(input: UpdateItemInput, options?: CallOptions): Promise<{ Attributes?: Item }>;
  query(input: QueryInput, options?: CallOptions): Promise<QueryOutput>;
  /** Items by key, in no particular order; those that do not exist are absent. Any number of keys (sent 100 a call). */
  batchGetItem(input: BatchGetItemInput, options?: CallOptions): Promise<{ Items: Item[] }>;
}

/** An item as plain values (strings, numbers, booleans, bytes, lists, maps, sets); read ones are the store's to check. */
export type Item = Record<string, unknown>;
export type CallOptions = { abortSignal?: AbortSignal };

type Names = { ExpressionAttributeNames?: Record<string, string> };
type Expressions = Names & { ExpressionAttributeValues?: Item };

export type GetItemInput = Names & { TableName: string; Key: Item; ConsistentRead?: boolean; ProjectionExpression?: string };

export type BatchGetItemInput = Names & { TableName: string; Keys: Item[]; ConsistentRead?: boolean; ProjectionExpression?: string };

export type PutItemInput = Expressions & { TableName: string; Item: Item; ConditionExpression?: string };

export type UpdateItemInput = Expressions & {
  TableName: string;
  Key: Item;
  UpdateExpression: string;
  ConditionExpression?: string;
  ReturnValues?: 'NONE' | 'ALL_OLD' | 'UPDATED_OLD' | 'ALL_NEW' | 'UPDATED_NEW';
};

export type QueryInput = Expressions & {
  TableName: string;
  IndexName?: string;
  KeyConditionExpression: string;
  FilterExpression?: string;
  ProjectionExpression?: string;
  Select?: 'ALL_ATTRIBUTES' | 'ALL_PROJECTED_ATTRIBUTES' | 'SPECIFIC_ATTRIBUTES' | 'COUNT';
  Limit?: number;
  ExclusiveStartKey?: Item;
  ScanIndexForward?: boolean;
  ConsistentRead?: boolean;
};

export type QueryOutput = { Items: Item[]; Count: number; LastEvaluatedKey?: Item };

export function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/**
 * A conditional write: true when it was made, false when its condition
 * failed; any other failure rejects.
 */
export async function conditionalWrite(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/**
 * An item a table holds that is not what its store writes (a bug, a hand
 * edit, a version that wrote another shape): never the client's doing, so a
 * 500 whose message, naming the item, is logged and never sent.
 */
export class MalformedItemError extends Error {
  readonly code = 'INTERNAL_ERROR';
  readonly statusCode = 500;
  /** Which kind of item (an order, an idempotency record, ...) and its key. */
  readonly kind: string;
  readonly pk: string;

  constructor(kind: string, pk: string, problem: string) {
    super(`${kind} item ${pk} is malformed: ${problem}`);
    this.name = 'MalformedItemError';
    this.kind = kind;
    this.pk = pk;
  }
}

/**
 * A check of items as read, against the schema of what the store writes:
 * the item typed, or a MalformedItemError. Compiled once; a read costs a few
 * microseconds.
 */
export function itemParser<T extends TSchema>(kind: string, schema: T): (item: Item) => Static<T> {
  const validator = Compile(schema);
  return (item) => {
    if (validator.Check(item)) return item;
    const [first] = validator.Errors(item);
    throw new MalformedItemError(kind, String(item.pk), `${first?.instancePath || '/'} ${first?.message ?? 'does not match'}`);
  };
}
