// Least privilege, derived from the code: each component's IAM policy
// (terraform/iam.tf, local.components) allows exactly the AWS actions that the
// code its entry point loads can call, on exactly the resources that code
// names through its configuration. A new call fails this test until its
// permission is granted; a permission nothing calls any more fails it too.
//
// What the code "can call" is read statically from every module the entry
// point reaches at run time (import graph, `import type` excluded): each AWS
// SDK command it constructs (`new GetObjectCommand(`), and each call of the
// DynamoDB data-plane methods (`.putItem(`). That is per module, not per code
// path: a module loaded for one call brings all of its calls.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config.ts';
import {
  blockOf,
  components,
  dataOf,
  defaultOf,
  type Json,
  k8sManifests,
  loadTerraform,
  resourceNameKeys,
  resourceOf,
  root,
  runtimeGraph,
  sourceOf,
} from './helpers.ts';

const tf = await loadTerraform();
const identities: Record<string, Json> = tf.locals.components;

/** The IAM service of each AWS SDK package the code may use. */
const sdkServices: Record<string, string> = {
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/lib-dynamodb': 'dynamodb',
  '@aws-sdk/client-s3': 's3',
  '@aws-sdk/client-sns': 'sns',
  '@aws-sdk/client-sqs': 'sqs',
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
};

/** lib-dynamodb's commands, by the DynamoDB operation (and IAM action) they send. */
const documentCommands: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  Query: 'Query',
  Scan: 'Scan',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactGet: 'TransactGetItems',
  TransactWrite: 'TransactWriteItems',
};

/**
 * Operations whose IAM action has another name (AWS Service Authorization
 * Reference): HeadBucket and ListObjectsV2 need ListBucket, HeadObject needs
 * GetObject, the parts of a multipart upload need PutObject, and the SNS and
 * SQS batch calls need the permission of their single call.
 */
const renamed: Record<string, string[]> = {
  'sns:PublishBatch': ['sns:Publish'],
  'sqs:SendMessageBatch': ['sqs:SendMessage'],
  'sqs:DeleteMessageBatch': ['sqs:DeleteMessage'],
  'sqs:ChangeMessageVisibilityBatch': ['sqs:ChangeMessageVisibility'],
  's3:HeadBucket': ['s3:ListBucket'],
  's3:ListObjectsV2': ['s3:ListBucket'],
  's3:HeadObject': ['s3:GetObject'],
  's3:CreateMultipartUpload': ['s3:PutObject'],
  's3:UploadPart': ['s3:PutObject'],
  's3:CompleteMultipartUpload': ['s3:PutObject'],
  's3:DeleteObjects': ['s3:DeleteObject'],
};

/** lib-storage's Upload: a multipart upload, aborted on failure. */
const upload = ['s3:PutObject', 's3:AbortMultipartUpload'];

/** The DynamoDB data-plane methods the stores call on their client, by operation. */
const dataPlaneMethods = ['getItem', 'putItem', 'updateItem', 'deleteItem', 'query', 'scan', 'batchGetItem', 'batchWriteItem'];

/** The resource a configuration key names, as terraform refers to it. */
function resourceOfKey(key: string): string | undefined {
  if (key.endsWith('_TABLE')) return `aws_dynamodb_table.this["${defaultOf(key as keyof typeof ConfigSchema.properties)}"]`;
  return (
    {
      DOCUMENTS_BUCKET: 'aws_s3_bucket.documents',
      ORDER_EVENTS_TOPIC_ARN: 'aws_sns_topic.order_events',
      ORDER_EVENTS_QUEUE: 'aws_sqs_queue.order_events',
      ORDER_EVENTS_DLQ: 'aws_sqs_queue.order_events_dlq',
      REDIS_AUTH_SECRET_ID: 'aws_secretsmanager_secret.redis_auth',
    } as Record<string, string>
  )[key];
}
const resourceKeys = [...resourceNameKeys, 'REDIS_AUTH_SECRET_ID'];

/** The imported names of a module, by package: `import { A, B as C, type D } from 'pkg'`. */
function importsOf(source: string): { local: string; imported: string; from: string }[] {
  const found: { local: string; imported: string; from: string }[] = [];
  for (const match of source.matchAll(/^\s*import\s+(?!type\b)\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/gm)) {
    for (const part of (match[1] ?? '').split(',')) {
      const [imported = '', local = imported] = part.trim().split(/\s+as\s+/);
      if (imported && !imported.startsWith('type ')) found.push({ imported, local, from: match[2] ?? '' });
    }
  }
  return found;
}

/** What a component's code calls and names: IAM actions, and the terraform resources of the keys it reads. */
function derive(entry: string): { actions: Set<string>; resources: Set<string> } {
  const actions = new Set<string>();
  const resources = new Set<string>();
  for (const file of runtimeGraph(entry).files) {
    const source = readFileSync(join(root, file), 'utf8');
    for (const { imported, local, from } of importsOf(source)) {
      if (!new RegExp(`\\bnew ${local}\\(`).test(source)) continue;
      if (from === '@aws-sdk/lib-storage' && imported === 'Upload') upload.forEach((a) => actions.add(a));
      const service = sdkServices[from];
      if (!service || !imported.endsWith('Command')) continue;
      const operation = imported.replace(/Command$/, '');
      const named = from === '@aws-sdk/lib-dynamodb' ? documentCommands[operation] : operation;
      if (!named) throw new Error(`${file}: no IAM action known for ${imported} of ${from}`);
      for (const action of renamed[`${service}:${named}`] ?? [`${service}:${named}`]) actions.add(action);
    }
    for (const method of dataPlaneMethods) {
      if (new RegExp(`\\.${method}\\(`).test(source)) actions.add(`dynamodb:${method[0]?.toUpperCase()}${method.slice(1)}`);
    }
    for (const match of source.matchAll(/\bconfig\.([A-Z][A-Z0-9_]*)\b/g)) {
      const key = match[1] ?? '';
      if (resourceKeys.includes(key)) resources.add(resourceOfKey(key) ?? key);
    }
  }
  return { actions, resources };
}

/** The resource a policy's ARN belongs to: `${aws_x.y.arn}/index/*` -> aws_x.y. */
const resourceOfArn = (arn: string): string => /^\$\{(.+)\.arn\}/.exec(arn)?.[1] ?? arn;
const serviceOfResource: Record<string, string> = {
  aws_dynamodb_table: 'dynamodb',
  aws_s3_bucket: 's3',
  aws_sns_topic: 'sns',
  aws_sqs_queue: 'sqs',
  aws_secretsmanager_secret: 'secretsmanager',
};
/** S3 actions on objects (bucket/*); every other S3 action here is on the bucket. */
const objectActions = new Set(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload']);

const deploymentOf = (component: string): Json =>
  k8sManifests().find(({ doc }) => doc.kind === 'Deployment' && doc.metadata.labels['app.kubernetes.io/component'] === component)?.doc;

describe('IAM, one role per component', () => {
  it('has an identity for every component, and none for anything else', () => {
    expect(Object.keys(identities).sort()).toEqual(components());
  });

  it('lets only EKS Pod Identity assume each role, for its own ServiceAccount on this cluster', () => {
    const trust = dataOf(tf, 'aws_iam_policy_document', 'pod_identity_trust');
    expect(trust.for_each).toBe('${local.components}');
    const [statement, ...others] = trust.statement;
    expect(others).toHaveLength(0);
    expect(statement.actions.sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    expect(blockOf(statement, 'principals')).toEqual({ type: 'Service', identifiers: ['pods.eks.amazonaws.com'] });
    // The session tags Pod Identity sets, as the EKS user guide documents them.
    expect(statement.condition).toEqual([
      { test: 'StringEquals', variable: 'aws:RequestTag/eks-cluster-arn', values: ['${module.eks.cluster_arn}'] },
      { test: 'StringEquals', variable: 'aws:RequestTag/kubernetes-namespace', values: ['${var.k8s_namespace}'] },
      { test: 'StringEquals', variable: 'aws:RequestTag/kubernetes-service-account', values: ['${each.value.service_account}'] },
    ]);
    expect(readFileSync(join(root, 'terraform/iam.tf'), 'utf8')).not.toMatch(/variable\s*=\s*"aws:SourceArn"/);

    const role = resourceOf(tf, 'aws_iam_role', 'component');
    expect(role.for_each).toBe('${local.components}');
    expect(role.assume_role_policy).toBe('${data.aws_iam_policy_document.pod_identity_trust[each.key].json}');
    expect(resourceOf(tf, 'aws_iam_role_policy', 'component')).toMatchObject({
      for_each: '${local.components}',
      role: '${aws_iam_role.component[each.key].id}',
      policy: '${data.aws_iam_policy_document.component[each.key].json}',
    });
    const policy = blockOf(dataOf(tf, 'aws_iam_policy_document', 'component').dynamic, 'statement');
    expect(policy.for_each).toBe('${each.value.statements}');
    expect(blockOf(policy, 'content')).toEqual({
      sid: '${statement.value.sid}',
      actions: '${statement.value.actions}',
      resources: '${statement.value.resources}',
    });
  });

  describe.each(components())('the %s role', (component) => {
    const entry = sourceOf(deploymentOf(component).spec.template.spec.containers[0].command[1]);
    const derived = derive(entry);
    const statements: Json[] = identities[component]?.statements ?? [];
    const granted = statements.flatMap((s) => s.actions as string[]);

    it(`allows exactly the AWS actions ${entry} can call`, () => {
      expect(derived.actions.size).toBeGreaterThan(0);
      expect([...new Set(granted)].sort()).toEqual([...derived.actions].sort());
      const pairs = statements.flatMap((s) => (s.actions as string[]).flatMap((a) => (s.resources as string[]).map((r) => `${a} ${r}`)));
      expect(pairs.length, 'an action granted twice on one resource').toBe(new Set(pairs).size);
    });

    it('on exactly the resources its configuration names, each action on its own kind of resource', () => {
      const arns = statements.flatMap((s) => s.resources as string[]);
      expect([...new Set(arns.map(resourceOfArn))].sort()).toEqual([...derived.resources].sort());
      for (const statement of statements) {
        expect(statement.effect ?? 'Allow', statement.sid).toBe('Allow');
        for (const action of statement.actions as string[]) {
          const service = action.split(':')[0];
          expect(action, statement.sid).not.toMatch(/\*/);
          for (const arn of statement.resources as string[]) {
            expect(serviceOfResource[resourceOfArn(arn).split('.')[0] ?? ''], `${action} on ${arn}`).toBe(service);
            if (service === 's3') expect(arn.endsWith('/*'), `${action} on ${arn}`).toBe(objectActions.has(action));
          }
        }
      }
    });

    it("reaches a table's indexes only where it queries, and never deletes or reconfigures what terraform owns", () => {
      for (const statement of statements) {
        const indexes = (statement.resources as string[]).filter((arn) => arn.endsWith('/index/*'));
        if (indexes.length > 0) expect(statement.actions, statement.sid).toContain('dynamodb:Query');
        for (const action of statement.actions as string[]) {
          expect(action).not.toMatch(/:(Create|Delete(Table|Bucket|Topic|Queue|Secret)|Put\w*Policy|Set|Subscribe|Purge|Update(Table|Secret))/);
        }
      }
      const tables: Record<string, Json> = tf.locals.tables;
      for (const statement of statements.filter((s) => (s.actions as string[]).includes('dynamodb:Query'))) {
        for (const arn of statement.resources as string[]) {
          const table = /this\["([^"]+)"\]/.exec(arn)?.[1] ?? '';
          if (!arn.endsWith('/index/*') && tables[table]?.indexes.length) {
            expect(statement.resources, `${table}'s index`).toContain(`${arn}/index/*`);
          }
        }
      }
    });
  });
});
