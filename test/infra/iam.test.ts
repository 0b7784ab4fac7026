// Least privilege, derived from the code, in every region: each component's
// IAM policy (terraform/modules/region/iam.tf, local.components) allows
// exactly the AWS actions that the code its entry point reaches can call, on
// exactly the resources of those services that code names through its
// configuration, as that region's pods are configured (the k8s/aws.env
// terraform prints for the region). Checked for the primary of one region
// and both regions of two (deployments.ts). A new call fails this test until
// its permission is granted; a permission nothing calls any more fails it too.
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
import { regionPairs } from '../../src/config.ts';
import { Unknown } from './hcl-eval.ts';
import {
  blockOf,
  components,
  dataOf,
  exampleAccountId,
  type Json,
  k8sManifests,
  loadTerraform,
  parseEnvFile,
  readYamlDocuments,
  regionModule,
  resourceNameKeys,
  resourceOf,
  root,
  runtimeGraph,
  sourceOf,
} from './helpers.ts';
import { PRIMARY, SECONDARY, deploy, one, regionsOf, two, twoRegionValues } from './deployments.ts';
import type { Plan } from './plan.ts';

const mod = await loadTerraform(regionModule);
const tables: Record<string, Json> = (await loadTerraform()).locals.tables;

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
  's3:GetObjectLockConfiguration': ['s3:GetBucketObjectLockConfiguration'],
};

/** lib-storage's Upload: a multipart upload, aborted on failure. */
const upload = ['s3:PutObject', 's3:AbortMultipartUpload'];

/**
 * The documents buckets' objects are SSE-KMS (by the bucket's default key,
 * and under the keys the code names on writes): reading one decrypts its
 * data key, writing one makes a data key, and a multipart upload decrypts
 * it again for each part (AWS S3 User Guide, "Using server-side encryption
 * with AWS KMS keys": multipart uploads need kms:Decrypt too). So the S3
 * object calls need KMS calls, on the keys of the buckets they reach.
 */
const kmsOfS3: Record<string, string[]> = {
  's3:GetObject': ['kms:Decrypt'],
  's3:PutObject': ['kms:GenerateDataKey', 'kms:Decrypt'],
};

/** The DynamoDB data-plane methods the stores call on their client, by operation. */
const dataPlaneMethods = ['getItem', 'putItem', 'updateItem', 'deleteItem', 'query', 'scan', 'batchGetItem', 'batchWriteItem'];

/** The configuration keys that name an AWS resource. */
const resourceKeys = [
  ...resourceNameKeys,
  'DOCUMENTS_KMS_KEY_ID',
  'TENANT_KMS_KEYS',
  'REDIS_AUTH_SECRET_ID',
  'DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID',
  'DOCUMENT_EVENTS_TOPIC_ARN',
  'DOCUMENT_INVALIDATIONS_QUEUE',
  'DOCUMENT_INVALIDATIONS_DLQ',
];

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

/**
 * What a component's code calls, and the configuration keys it reads that
 * name resources. DOCUMENT_REGIONS stands for "the other regions too" when
 * the code makes a Regions (src/adapters/regions.ts), which makes the clients of
 * every region listed there, other than for the primary's orders
 * (ordersConfig); every process reads the key itself to check its
 * configuration, which reaches no region.
 */
function derive(entry: string): { actions: Set<string>; keys: Set<string> } {
  const actions = new Set<string>();
  const keys = new Set<string>();
  for (const { chunk, module } of reachedChunks(entry)) {
    const source = chunk.text;
    // ordersConfig makes Regions for the primary alone (orders, wherever the process runs).
    if (!chunk.names.includes('ordersConfig') && /\bnew Regions\(/.test(source)) keys.add('DOCUMENT_REGIONS');
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
  for (const action of [...actions]) for (const kms of kmsOfS3[action] ?? []) actions.add(kms);
  return { actions, keys };
}

/** The IAM service of an ARN, or of what only apply knows (`<...aws_secretsmanager_secret...>`). */
function serviceOf(arn: string): string | undefined {
  const type = /[<.](aws_[a-z0-9_]+?)\.[a-z_]+(\[[^\]]*\])?\.arn>$/.exec(arn)?.[1];
  return type ? serviceOfResource[type] : /^arn:aws:([a-z0-9-]+):/.exec(arn)?.[1];
}
const serviceOfResource: Record<string, string> = {
  aws_dynamodb_table: 'dynamodb',
  aws_s3_bucket: 's3',
  aws_sns_topic: 'sns',
  aws_sqs_queue: 'sqs',
  aws_secretsmanager_secret: 'secretsmanager',
  aws_kms_key: 'kms',
};

/**
 * The resources a component's configuration names in one region, as its
 * pods are configured there: each key's resource, in the region the code
 * reaches it in. Orders live in the primary, the first of DOCUMENT_REGIONS
 * (src/adapters/regions.ts, ordersConfig); a document key names the same resource in
 * every region DOCUMENT_REGIONS lists when the code reads it (Regions.configOf:
 * a key's home, content not replicated yet). A key the region's configuration
 * does not set names nothing there (a feature off). Only resources of the
 * services the code calls need a permission. The KMS keys are those of the
 * buckets it reaches, in each bucket's region (`keysIn`): the bucket's
 * default key, and the keys the aliases of DOCUMENTS_KMS_KEY_ID and
 * TENANT_KMS_KEYS name there, when the code reads them.
 */
function namedResources(
  keys: Set<string>,
  env: Record<string, string>,
  services: Set<string>,
  keysIn: (region: string, aliases: string[]) => string[],
): Set<string> {
  const region = env.AWS_REGION ?? '';
  const listed = [...regionPairs(keys.has('DOCUMENT_REGIONS') ? (env.DOCUMENT_REGIONS ?? '') : '')];
  const primary = regionPairs(env.DOCUMENT_REGIONS ?? '').keys().next().value ?? region;
  const everywhere = listed.length > 0 ? listed : [[region, env.DOCUMENTS_BUCKET ?? '']];
  const table = (where: string, name: string) => `arn:aws:dynamodb:${where}:${exampleAccountId}:table/${name}`;
  const queue = (where: string, name: string) => `arn:aws:sqs:${where}:${exampleAccountId}:${name}`;
  const arns = [...keys].flatMap((key) => {
    const value = env[key];
    if (value === undefined || key === 'DOCUMENT_REGIONS') return [];
    if (key === 'DOCUMENTS_TABLE' || key === 'IDEMPOTENCY_TABLE') return everywhere.map(([where]) => table(where!, value));
    if (key === 'ORDERS_TABLE' || key === 'CONSUMER_TABLE') return [table(primary, value)];
    if (key === 'DOCUMENTS_BUCKET') return everywhere.map(([, bucket]) => `arn:aws:s3:::${bucket}`);
    if (key === 'ORDER_EVENTS_QUEUE' || key === 'ORDER_EVENTS_DLQ') return [queue(primary, value)];
    if (key === 'DOCUMENT_INVALIDATIONS_QUEUE' || key === 'DOCUMENT_INVALIDATIONS_DLQ') return [queue(region, value)];
    // A document's events go to its home region's topic of this name (the same in every region).
    if (key === 'DOCUMENT_CHANGES_TOPIC_ARN') return everywhere.map(([where]) => (where === region ? value : value.replace(`:sns:${region}:`, `:sns:${where}:`)));
    if (key === 'DOCUMENTS_KMS_KEY_ID' || key === 'TENANT_KMS_KEYS') return []; // the keys of the buckets, below
    return [value]; // the topics' and the secret's ARNs
  });
  if (keys.has('DOCUMENTS_BUCKET')) {
    const aliases = [
      ...(keys.has('DOCUMENTS_KMS_KEY_ID') && env.DOCUMENTS_KMS_KEY_ID ? [env.DOCUMENTS_KMS_KEY_ID] : []),
      ...(keys.has('TENANT_KMS_KEYS') ? regionPairs(env.TENANT_KMS_KEYS ?? '').values() : []),
    ];
    arns.push(...everywhere.flatMap(([where]) => keysIn(where!, aliases)));
  }
  return new Set(arns.filter((arn) => services.has(serviceOf(arn) ?? '')));
}

/**
 * What the derivation cannot see: a component that names every region's
 * configuration (DOCUMENT_REGIONS) but uses less of the others'. The
 * lifecycle worker reads only an upload's record at its home
 * (sweptStores, src/documents/content-sweeper.ts): of another region, the
 * documents table alone.
 */
const elsewhereOnly: Record<string, Set<string>> = { lifecycle: new Set(['dynamodb']) };

/** The resource a policy's resource belongs to: `<arn>/index/*` and `<arn>/*` are the table's, the bucket's. */
const resourceOfArn = (arn: string): string => arn.replace(/\/(index\/)?\*$/, '');
/** S3 actions on objects (bucket/*); every other S3 action here is on the bucket. */
const objectActions = new Set(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:PutObjectRetention', 's3:PutObjectLegalHold']);

/** The Deployments of k8s/, and with several regions those of k8s/components/multi-region too. */
const multiRegionDeployments = readYamlDocuments('k8s/components/multi-region/invalidations.yaml').filter((doc) => doc.kind === 'Deployment');
const deploymentsOf = (multi: boolean): Json[] => [
  ...k8sManifests().filter(({ doc }) => doc.kind === 'Deployment').map(({ doc }) => doc),
  ...(multi ? multiRegionDeployments : []),
];
const componentOf = (deployment: Json): string => deployment.metadata.labels['app.kubernetes.io/component'];

/** Two regions, two tenants with keys of their own. */
const keyed = deploy({ ...twoRegionValues, tenant_kms_keys: ['acme', 'globex'] });

/** Every region of the deployments, with its pods' configuration as terraform prints it, and the deployment. */
const regions: [string, Plan, Record<string, string>, Json[], Plan][] = [
  [`one region (${PRIMARY})`, regionsOf(one)[PRIMARY]!, parseEnvFile(String(one.output('k8s_env'))), deploymentsOf(false), one],
  ...[two, keyed].flatMap((plan) =>
    [PRIMARY, SECONDARY].map((region): [string, Plan, Record<string, string>, Json[], Plan] => [
      `two regions${plan === keyed ? ' and tenant keys' : ''}: ${region === PRIMARY ? 'the primary' : 'the second'} (${region})`,
      regionsOf(plan)[region]!,
      parseEnvFile((plan.output('region_k8s_env') as Record<string, string>)[region]!),
      deploymentsOf(true),
      plan,
    ]),
  ),
];

/**
 * The KMS keys of a region's documents bucket in a deployment: its default
 * key, and the keys these aliases name in that region (each must name one).
 */
function contentKeysIn(deployment: Plan, region: string, aliases: string[]): string[] {
  const sse = regionsOf(deployment)[region]!.instance('aws_s3_bucket_server_side_encryption_configuration', 'documents');
  const named = deployment.instances('aws_kms_alias').filter(({ config }) => config.region === region && aliases.includes(config.name));
  expect(named.map(({ config }) => config.name).sort(), `the aliases in ${region}`).toEqual([...aliases].sort());
  return [String(sse.rule[0].apply_server_side_encryption_by_default[0].kms_master_key_id), ...named.map(({ config }) => String(config.target_key_id).replace(/\.key_id>$/, '.arn>'))];
}

describe('IAM, one role per component', () => {
  it('lets only EKS Pod Identity assume each role, for its own ServiceAccount on its region\'s cluster', () => {
    const trust = dataOf(mod, 'aws_iam_policy_document', 'pod_identity_trust');
    // One document per identity: the components', and the cluster autoscaler's (cluster-autoscaler.tf).
    expect(trust.for_each).toBe('${local.pod_identities}');
    const [statement, ...others] = trust.statement;
    expect(others).toHaveLength(0);
    expect(statement.actions.sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    expect(blockOf(statement, 'principals')).toEqual({ type: 'Service', identifiers: ['pods.eks.amazonaws.com'] });
    // The session tags Pod Identity sets, as the EKS user guide documents them.
    expect(statement.condition).toEqual([
      { test: 'StringEquals', variable: 'aws:RequestTag/eks-cluster-arn', values: ['${module.eks.cluster_arn}'] },
      { test: 'StringEquals', variable: 'aws:RequestTag/kubernetes-namespace', values: ['${each.value.namespace}'] },
      { test: 'StringEquals', variable: 'aws:RequestTag/kubernetes-service-account', values: ['${each.value.service_account}'] },
    ]);
    expect(readFileSync(join(root, regionModule, 'iam.tf'), 'utf8')).not.toMatch(/variable\s*=\s*"aws:SourceArn"/);

    const role = resourceOf(mod, 'aws_iam_role', 'component');
    expect(role.for_each).toBe('${local.components}');
    expect(role.assume_role_policy).toBe('${data.aws_iam_policy_document.pod_identity_trust[each.key].json}');
    expect(resourceOf(mod, 'aws_iam_role_policy', 'component')).toMatchObject({
      for_each: '${local.components}',
      role: '${aws_iam_role.component[each.key].id}',
      policy: '${data.aws_iam_policy_document.component[each.key].json}',
    });
    const policy = blockOf(dataOf(mod, 'aws_iam_policy_document', 'component').dynamic, 'statement');
    expect(policy.for_each).toBe('${each.value.statements}');
    expect(blockOf(policy, 'content')).toEqual({
      sid: '${statement.value.sid}',
      actions: '${statement.value.actions}',
      resources: '${statement.value.resources}',
    });
  });

  it('names every role once in the account: the primary\'s as before, a further region\'s with its region', () => {
    const names = [one, two].flatMap((plan) => Object.values(regionsOf(plan)).map((region) => region.instances('aws_iam_role').map((r) => r.config.name)));
    // The components' roles, and the cluster autoscaler's (cluster-autoscaler.tf).
    expect(names[0]).toEqual(['docsvc-cluster-autoscaler', 'docsvc-api', 'docsvc-relay', 'docsvc-consumer', 'docsvc-lifecycle']);
    expect(names[1]).toEqual([...names[0]!, 'docsvc-invalidations']);
    expect(names[2]).toEqual(names[1]!.map((name) => `${name}-${SECONDARY}`));
  });
});

describe.each(regions)('IAM in %s', (_name, region, env, deployments, terraformPlan) => {
  const identities = region.local.components as Record<string, Json>;

  it('has an identity for every component deployed there, and none for anything else', () => {
    expect(Object.keys(identities).sort()).toEqual(deployments.map(componentOf).sort());
  });

  describe.each(deployments.map((deployment) => [componentOf(deployment), deployment] as const))('the %s role', (component, deployment) => {
    const entry = sourceOf(deployment.spec.template.spec.containers[0].command[1]);
    const derived = derive(entry);
    const statements: Json[] = identities[component]?.statements ?? [];
    const granted = statements.flatMap((s) => s.actions as string[]);
    const resourcesOf = (statement: Json) => (statement.resources as unknown[]).map(String);

    it('is assumed by its ServiceAccount only, on this region\'s cluster', () => {
      const [statement] = region.instance('aws_iam_policy_document', 'pod_identity_trust', component, 'data').statement;
      expect(statement.condition.map((c: Json) => [c.variable, c.values.map(String)])).toEqual([
        ['aws:RequestTag/eks-cluster-arn', [`<${region.prefix}module.eks.cluster_arn>`]],
        ['aws:RequestTag/kubernetes-namespace', [deployment.metadata.namespace ?? 'docsvc']],
        ['aws:RequestTag/kubernetes-service-account', [deployment.spec.template.spec.serviceAccountName]],
      ]);
      expect(region.instance('aws_eks_pod_identity_association', 'component', component)).toMatchObject({
        region: region.variable('region'),
        cluster_name: new Unknown(`${region.prefix}module.eks.cluster_name`),
        namespace: 'docsvc',
        service_account: deployment.spec.template.spec.serviceAccountName,
        role_arn: new Unknown(`${region.prefix}aws_iam_role.component["${component}"].arn`),
      });
    });

    it(`allows exactly the AWS actions ${entry} can call`, () => {
      expect(derived.actions.size).toBeGreaterThan(0);
      expect([...new Set(granted)].sort()).toEqual([...derived.actions].sort());
      const pairs = statements.flatMap((s) => (s.actions as string[]).flatMap((a) => resourcesOf(s).map((r) => `${a} ${r}`)));
      expect(pairs.length, 'an action granted twice on one resource').toBe(new Set(pairs).size);
    });

    it("on exactly the resources its configuration names in this region, each action on its own kind of resource", () => {
      const services = new Set([...derived.actions].map((action) => action.split(':')[0] ?? ''));
      const keysIn = (where: string, aliases: string[]) => contentKeysIn(terraformPlan, where, aliases);
      const named = namedResources(derived.keys, env, services, keysIn);
      const elsewhere = elsewhereOnly[component];
      const local = () => namedResources(new Set([...derived.keys].filter((key) => key !== 'DOCUMENT_REGIONS')), env, services, keysIn);
      const expected = elsewhere ? new Set([...local(), ...[...named].filter((arn) => elsewhere.has(serviceOf(arn) ?? ''))]) : named;
      expect(expected.size).toBeGreaterThan(0);
      const arns = statements.flatMap(resourcesOf);
      expect([...new Set(arns.map(resourceOfArn))].sort()).toEqual([...expected].sort());
      for (const statement of statements) {
        expect(statement.effect ?? 'Allow', statement.sid).toBe('Allow');
        for (const action of statement.actions as string[]) {
          const service = action.split(':')[0];
          expect(action, statement.sid).not.toMatch(/\*/);
          for (const arn of resourcesOf(statement)) {
            expect(serviceOf(arn), `${action} on ${arn}`).toBe(service);
            if (service === 's3') expect(arn.endsWith('/*'), `${action} on ${arn}`).toBe(objectActions.has(action));
          }
        }
      }
    });

    it("reaches a table's indexes only where it queries, and never deletes or reconfigures what terraform owns", () => {
      // Governance-mode retention can be shortened with this and the x-amz-bypass-governance-retention header: nobody here may.
      expect(statements.flatMap((s) => s.actions as string[])).not.toContain('s3:BypassGovernanceRetention');
      for (const statement of statements) {
        const indexes = resourcesOf(statement).filter((arn) => arn.endsWith('/index/*'));
        if (indexes.length > 0) expect(statement.actions, statement.sid).toContain('dynamodb:Query');
        for (const action of statement.actions as string[]) {
          expect(action).not.toMatch(/:(Create|Delete(Table|Bucket|Topic|Queue|Secret)|Put\w*Policy|Set|Subscribe|Purge|Update(Table|Secret))/);
        }
      }
      for (const statement of statements.filter((s) => (s.actions as string[]).includes('dynamodb:Query'))) {
        for (const arn of resourcesOf(statement)) {
          const table = /:table\/docsvc-([^/]+)$/.exec(arn)?.[1] ?? '';
          if (tables[table]?.indexes.length) expect(resourcesOf(statement), `${table}'s index`).toContain(`${arn}/index/*`);
        }
      }
    });
  });
});
