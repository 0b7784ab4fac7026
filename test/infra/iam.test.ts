// Least privilege, derived from the code: each component's IAM policy
// (terraform/iam.tf, local.components) allows exactly the AWS actions that the
// code its entry point reaches can call, on exactly the resources of those
// services that code names through its configuration. A new call fails this
// test until its permission is granted; a permission nothing calls any more
// fails it too.
//
// What the code "reaches" is read statically, per top-level declaration:
// from everything a module runs when it is loaded (the entry point's body,
// any module-level statement of the modules it imports), every top-level
// function, class or constant its code names, in its own module or through an
// import, and so on. In what is reached: each AWS SDK command constructed
// (`new GetObjectCommand(`), each call of the DynamoDB data-plane methods
// (`.putItem(`), each configuration key read (`config.ORDERS_TABLE`). A class
// is reached whole: a component that uses one method of a store is granted
// what all its methods call. Names are matched as words, so a mention can
// only add to what is reached, never hide a call.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

type Import = { local: string; imported: string; from: string };
type Chunk = { file: string; names: string[]; text: string; effect: boolean };
type Module = { file: string; imports: Import[]; chunks: Chunk[]; star: Set<string> };

/** The value imports of a module: `import { A, B as C, type D } from 'x'`, `import * as N from 'x'`, `import E from 'x'`. */
function importsOf(source: string, file: string): Import[] {
  const resolve = (from: string) => (from.startsWith('.') ? join(dirname(file), from) : from);
  const found: Import[] = [];
  for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)([^'";]*?)\s+from\s*['"]([^'"]+)['"]/gm)) {
    const clause = match[1] ?? '';
    const from = resolve(match[2] ?? '');
    const named = /\{([^}]*)\}/.exec(clause)?.[1];
    for (const part of (named ?? '').split(',')) {
      const [imported = '', local = imported] = part.trim().split(/\s+as\s+/);
      if (imported && !imported.startsWith('type ')) found.push({ imported, local, from });
    }
    const star = /\*\s+as\s+([\w$]+)/.exec(clause)?.[1];
    if (star) found.push({ imported: '*', local: star, from });
    const fallback = /^([\w$]+)\s*(?:,|$)/.exec(clause.trim())?.[1];
    if (fallback) found.push({ imported: 'default', local: fallback, from });
  }
  return found;
}

/** A module cut into its top-level statements (each starts at column 0), with the names each declares. */
function moduleOf(file: string): Module {
  const source = readFileSync(join(root, file), 'utf8');
  const chunks: Chunk[] = [];
  for (const line of source.split('\n')) {
    if (/^[A-Za-z_$@]/.test(line) || chunks.length === 0) chunks.push({ file, names: [], text: '', effect: false });
    const chunk = chunks.at(-1)!;
    chunk.text += `${line}\n`;
  }
  const star = new Set<string>();
  for (const chunk of chunks) {
    const head = chunk.text.trimStart();
    const declared =
      /^(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([\w$]+)/.exec(head) ??
      /^(?:export\s+)?(?:async\s+)?function\*?\s+([\w$]+)/.exec(head) ??
      /^(?:export\s+)?(?:const|let|var)\s+([\w$]+)/.exec(head) ??
      /^(?:export\s+)?(?:const\s+)?enum\s+([\w$]+)/.exec(head);
    const destructured = /^(?:export\s+)?(?:const|let|var)\s+\{([^}]*)\}/.exec(head)?.[1];
    if (declared?.[1]) chunk.names.push(declared[1]);
    if (destructured) chunk.names.push(...destructured.split(',').map((n) => n.trim().split(/\s*:\s*/).at(-1) ?? '').filter(Boolean));
    const exportAll = /^export\s+\*\s+from\s*['"]([^'"]+)['"]/.exec(head)?.[1];
    if (exportAll) star.add(join(dirname(file), exportAll));
    const typeOnly = /^(?:export\s+)?(?:declare\s+)?(?:type|interface)\s/.test(head) || /^import\s/.test(head) || /^export\s+(?:type\s+)?\{/.test(head);
    chunk.effect = chunk.names.length === 0 && !typeOnly && !exportAll && head !== '';
  }
  return { file, imports: importsOf(source, join(root, file)).map((i) => ({ ...i, from: i.from.startsWith(root) ? i.from.slice(root.length + 1) : i.from })), chunks, star };
}

/** The code an entry point reaches: the top-level statements it runs, and the declarations they name, transitively. */
function reachedChunks(entry: string): { chunk: Chunk; module: Module }[] {
  const modules = new Map(runtimeGraph(entry).files.map((file) => [file, moduleOf(file)]));
  const reached = new Map<Chunk, Module>();
  const queue: Chunk[] = [];
  const reach = (module: Module | undefined, name: string) => {
    if (!module) return;
    const targets = name === '*' ? module.chunks.filter((c) => c.names.length > 0) : module.chunks.filter((c) => c.names.includes(name));
    for (const chunk of targets) if (!reached.has(chunk)) (reached.set(chunk, module), queue.push(chunk));
    if (targets.length === 0 && name !== '*') {
      for (const imported of module.imports.filter((i) => i.local === name)) reach(modules.get(imported.from), imported.imported);
      for (const from of module.star) reach(modules.get(from), name);
    }
  };
  for (const module of modules.values()) {
    for (const chunk of module.chunks.filter((c) => c.effect)) (reached.set(chunk, module), queue.push(chunk));
  }
  while (queue.length > 0) {
    const chunk = queue.pop()!;
    const module = reached.get(chunk)!;
    for (const word of new Set(chunk.text.match(/[A-Za-z_$][\w$]*/g) ?? [])) {
      reach(module, word);
      for (const imported of module.imports.filter((i) => i.local === word)) {
        reach(modules.get(imported.from), imported.imported);
      }
    }
  }
  return [...reached].map(([chunk, module]) => ({ chunk, module }));
}

/** What a component's code calls and names: IAM actions, and the terraform resources of the keys it reads. */
function derive(entry: string): { actions: Set<string>; resources: Set<string> } {
  const actions = new Set<string>();
  const keys = new Set<string>();
  for (const { chunk, module } of reachedChunks(entry)) {
    const source = chunk.text;
    for (const { imported, local, from } of module.imports) {
      if (!new RegExp(`\\bnew ${local.replace('$', '\\$')}\\(`).test(source)) continue;
      if (from === '@aws-sdk/lib-storage' && imported === 'Upload') upload.forEach((a) => actions.add(a));
      const service = sdkServices[from];
      if (!service || !imported.endsWith('Command')) continue;
      const operation = imported.replace(/Command$/, '');
      const named = from === '@aws-sdk/lib-dynamodb' ? documentCommands[operation] : operation;
      if (!named) throw new Error(`${chunk.file}: no IAM action known for ${imported} of ${from}`);
      for (const action of renamed[`${service}:${named}`] ?? [`${service}:${named}`]) actions.add(action);
    }
    for (const method of dataPlaneMethods) {
      if (new RegExp(`\\.${method}\\(`).test(source)) actions.add(`dynamodb:${method[0]?.toUpperCase()}${method.slice(1)}`);
    }
    for (const match of source.matchAll(/\bconfig\.([A-Z][A-Z0-9_]*)\b/g)) {
      if (resourceKeys.includes(match[1] ?? '')) keys.add(match[1] ?? '');
    }
  }
  // A resource the code names but calls nothing of (a topic ARN it only compares with) needs no permission.
  const services = new Set([...actions].map((action) => action.split(':')[0]));
  const resources = [...keys].map((key) => resourceOfKey(key) ?? key).filter((r) => services.has(serviceOfResource[r.split('.')[0] ?? '']));
  return { actions, resources: new Set(resources) };
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
