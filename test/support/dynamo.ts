import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../src/adapters/aws.ts';
import type { DynamoDb } from '../../src/adapters/dynamodb.ts';

/**
 * Every item of a table whose key starts with `prefix` (test tables are
 * small). Through the SDK on the control-plane client: the stores' port has
 * no Scan, since no store needs one.
 */
export async function scanAll(aws: AwsClients, table: string, prefix: string): Promise<Record<string, unknown>[]> {
  const documents = DynamoDBDocumentClient.from(aws.dynamoAdmin);
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: 'begins_with(pk, :prefix)',
        ExpressionAttributeValues: { ':prefix': prefix },
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/**
 * The order consumer's record of an applied order, as it wrote it to its
 * table (without its key); undefined when the order was not applied. The
 * consumer itself never reads it back: it only writes it, once.
 */
export async function appliedOrderRecord(dynamo: DynamoDb, table: string, tenant: string, orderId: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await dynamo.getItem({ TableName: table, Key: { pk: `ORDER#${tenant}#${orderId}` }, ConsistentRead: true });
  if (!Item) return undefined;
  const { pk: _pk, ...record } = Item;
  return record;
}
