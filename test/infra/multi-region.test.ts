// terraform/ with two regions, expanded offline (plan.ts, deployments.ts):
// each property of docs/design.md "Multi-region documents" holds in what terraform
// would create, both regions are made of the same objects, and one region
// (the default) creates none of the multi-region path. The security
// defaults every region gets are asserted per region in terraform.test.ts,
// iam.test.ts and load-balancer.test.ts, for the second region too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { topicNameOf } from '../../src/bootstrap/resources.ts';
import { ConfigSchema, loadConfig } from '../../src/config.ts';
import { Unknown } from './hcl-eval.ts';
import { configMapEnv, defaultOf, exampleAccountId, exists, type Json, k8sManifests, parseEnvFile, readYaml, readYamlDocuments, routes, terraformDir } from './helpers.ts';
import { DNS, PRIMARY, SECONDARY, certificate, deploy, one, regionsOf, two, twoRegionValues } from './deployments.ts';
import type { Plan } from './plan.ts';

const prefix = 'docsvc';
const bucketOf: Record<string, string> = { [PRIMARY]: `${prefix}-documents-${exampleAccountId}`, [SECONDARY]: `${prefix}-documents-${exampleAccountId}-${SECONDARY}` };
const address = (value: unknown) => (value instanceof Unknown ? value.address : value);
const { [PRIMARY]: primary, [SECONDARY]: secondary } = regionsOf(two);
const inRegion: Record<string, Plan> = { [PRIMARY]: primary!, [SECONDARY]: secondary! };
const route = two.instance('aws_route53_record', 'api', PRIMARY);

/** The resource types multi-region.tf declares. */
const multiRegionTypes = [...readFileSync(join(terraformDir, 'multi-region.tf'), 'utf8').matchAll(/^resource "([a-z0-9_]+)" "([a-z0-9_]+)"/gm)].map(([, type, name]) => ({ type: type!, name: name! }));

describe('one region (the default)', () => {
  const alone = Object.values(regionsOf(one))[0]!;

  it('creates nothing of the multi-region path: no further region, no replica, no stream, no route, no invalidations', () => {
    expect(one.moduleInstances('region').map(({ key }) => key)).toEqual(['primary']);
    for (const { type, name } of multiRegionTypes) {
      expect(one.instances(type).filter((instance) => instance.address.startsWith(`${type}.${name}`)), `${type}.${name}`).toEqual([]);
    }
    for (const table of one.instances('aws_dynamodb_table')) {
      expect(table.config.stream_enabled, table.address).toBe(false);
      expect(table.config.replica ?? [], table.address).toEqual([]);
    }
    for (const type of ['aws_sqs_queue', 'aws_sqs_queue_policy']) expect(alone.instances(type), type).toEqual([]);
    // Of topics, the region's document changes only (for subscribers, in every deployment).
    expect(alone.instances('aws_sns_topic').map((topic) => topic.config.name)).toEqual([`${prefix}-document-changes`]);
    expect(Object.keys(alone.local.components as object)).not.toContain('invalidations');
    for (const output of ['region_clusters', 'region_k8s_env', 'region_redis']) expect(one.output(output), output).toEqual({});
  });

  it('lists the regions in one variable, the primary first, and refuses several without a name to route by or a certificate per region', () => {
    expect(two.failedPreconditions('aws_route53_record', 'api', PRIMARY)).toEqual([]);
    const failures = (values: Record<string, unknown>) => deploy({ ...twoRegionValues, ...values }).failedPreconditions('aws_route53_record', 'api', PRIMARY);
    expect(failures({ regions: [SECONDARY, PRIMARY] })).toEqual([expect.stringMatching(/first of regions is the primary/)]);
    expect(failures({ dns: null })).toEqual([expect.stringMatching(/need dns/)]);
    expect(failures({ certificate_arns: {} })).toEqual([expect.stringMatching(/need certificate_arns/)]);
  });
});

describe('two regions', () => {
  it('deploy the second region as an instance of the same module, with its own certificate', () => {
    expect(two.moduleInstances('region').map(({ key }) => key)).toEqual(['primary', SECONDARY]);
    for (const [region, plan] of Object.entries(inRegion)) {
      expect(plan.variable('region')).toBe(region);
      expect(plan.variable('certificate_arn')).toBe(certificate(region));
    }
  });

  it('are made of the same objects, configured the same way but for their region and the names that carry it', () => {
    /** A region's objects, its own names written as R. */
    const shape = (plan: Plan, region: string) => {
      const own = (text: string) =>
        text
          .replaceAll(plan.prefix, 'module.region[R].')
          .replaceAll(`-${exampleAccountId}-${region}`, `-${exampleAccountId}`)
          .replace(new RegExp(`(docsvc-[a-z-]+)-${region}\\b`, 'g'), '$1')
          .replaceAll(region, 'R');
      const rewrite = (value: unknown): unknown => {
        if (value instanceof Unknown) return own(String(value));
        if (typeof value === 'string') return own(value);
        if (Array.isArray(value)) return value.map(rewrite);
        if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v)]));
        return value;
      };
      const objects = [...plan.resources(), ...['vpc', 'eks'].map((name) => ({ address: `${plan.prefix}module.${name}`, config: plan.moduleArguments(name)[0]!.args }))];
      return Object.fromEntries(objects.map(({ address: a, config }) => [own(a), rewrite(config)]));
    };
    const [first, second] = [shape(primary!, PRIMARY), shape(secondary!, SECONDARY)];
    expect(Object.keys(second).sort()).toEqual(Object.keys(first).sort());
    expect(Object.keys(first).length).toBeGreaterThan(40);
    for (const [object, config] of Object.entries(first)) expect(second[object], object).toEqual(config);
  });

  it('make the documents and idempotency tables global tables, and keep orders in the primary', () => {
    const tables = Object.fromEntries(two.instances('aws_dynamodb_table').map((table) => [table.key, table.config]));
    for (const name of ['documents', 'idempotency-keys']) {
      expect(tables[name].stream_enabled, name).toBe(true);
      expect(tables[name].stream_view_type).toBe('NEW_AND_OLD_IMAGES');
      // A replica is encrypted under its own region's key, and protected from deletion as its table is.
      expect(tables[name].replica).toEqual([
        {
          region_name: SECONDARY,
          point_in_time_recovery: true,
          propagate_tags: true,
          kms_key_arn: new Unknown(`aws_kms_key.data["${SECONDARY}"].arn`),
          deletion_protection_enabled: true,
        },
      ]);
      expect(tables[name].deletion_protection_enabled).toBe(true);
      expect(tables[name].server_side_encryption).toEqual([{ enabled: true, kms_key_arn: new Unknown(`aws_kms_key.data["${PRIMARY}"].arn`) }]);
    }
    // Turned off to tear down, for the replicas too (or the destroy stops at them).
    const unprotected = deploy({ ...twoRegionValues, deletion_protection: false }).instances('aws_dynamodb_table');
    for (const { address: a, config } of unprotected) {
      expect(config.deletion_protection_enabled, a).toBe(false);
      for (const replica of config.replica ?? []) expect(replica.deletion_protection_enabled, a).toBe(false);
    }
    for (const name of ['orders', 'order-consumer']) {
      expect(tables[name].replica ?? [], name).toEqual([]);
      expect(tables[name].stream_enabled).toBe(false);
    }
    // The service's names for the global tables are those of its configuration.
    expect(two.local.global_tables).toEqual([defaultOf('DOCUMENTS_TABLE'), defaultOf('IDEMPOTENCY_TABLE')]);
    // No region has tables, or orders' topic and queues, of its own.
    for (const plan of Object.values(inRegion)) {
      expect(plan.instances('aws_dynamodb_table')).toEqual([]);
      expect(plan.instances('aws_sns_topic').map((topic) => topic.config.name).sort()).toEqual([`${prefix}-document-changes`, `${prefix}-document-events`]);
    }
  });

  it('replicate content between the two buckets, both ways, delete markers included', () => {
    expect(two.local.bucket_names).toEqual(bucketOf);
    for (const [region, plan] of Object.entries(inRegion)) {
      expect(plan.instance('aws_s3_bucket', 'documents').bucket).toBe(bucketOf[region]);
      expect(plan.instance('aws_s3_bucket_versioning', 'documents').versioning_configuration[0].status).toBe('Enabled');
    }
    const configurations = two.instances('aws_s3_bucket_replication_configuration');
    expect(configurations.map((configuration) => configuration.key)).toEqual([PRIMARY, SECONDARY].sort());
    for (const { key, config } of configurations) {
      const other = key === PRIMARY ? SECONDARY : PRIMARY;
      expect(config).toMatchObject({ region: key, bucket: bucketOf[key as string] });
      expect(config.rule).toEqual([
        {
          id: `to-${other}`,
          status: 'Enabled',
          priority: [PRIMARY, SECONDARY].indexOf(other),
          filter: [{ prefix: null }],
          delete_marker_replication: [{ status: 'Enabled' }],
          // SSE-KMS objects replicate only when asked, each replica under the destination's key.
          source_selection_criteria: [{ sse_kms_encrypted_objects: [{ status: 'Enabled' }] }],
          destination: [
            {
              bucket: `arn:aws:s3:::${bucketOf[other]}`,
              storage_class: 'STANDARD',
              encryption_configuration: [{ replica_kms_key_id: new Unknown(`aws_kms_key.data["${other}"].arn`) }],
            },
          ],
        },
      ]);
      expect(address(config.role)).toBe('aws_iam_role.replication[0].arn');
    }
    const trust = two.instance('aws_iam_policy_document', 'replication_trust', undefined, 'data').statement[0];
    expect(trust.principals[0]).toEqual({ type: 'Service', identifiers: ['s3.amazonaws.com'] });
    const statements = two.instance('aws_iam_policy_document', 'replication', undefined, 'data').statement;
    const buckets = Object.values(bucketOf).map((bucket) => `arn:aws:s3:::${bucket}`).sort();
    expect(statements.find((s: Json) => s.sid === 'SourceBuckets').resources.sort()).toEqual(buckets);
    expect(statements.find((s: Json) => s.sid === 'DestinationObjects').actions).toEqual(['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags']);
    const keys = statements.find((s: Json) => s.sid === 'ContentKeys');
    expect(keys.resources.map(String).sort()).toEqual([PRIMARY, SECONDARY].map((region) => `<aws_kms_key.data["${region}"].arn>`).sort());
    expect(keys.condition).toEqual([{ test: 'StringEquals', variable: 'kms:ViaService', values: [`s3.${PRIMARY}.amazonaws.com`, `s3.${SECONDARY}.amazonaws.com`] }]);
    // Without Object Lock, nothing of it.
    expect(statements.map((s: Json) => s.sid)).not.toContain('SourceObjectLock');
  });

  it("replicate a keyed tenant's objects under its key in the other region, and locked objects with their lock", () => {
    const keyed = deploy({ ...twoRegionValues, tenant_kms_keys: ['acme'], object_lock: true });
    for (const { key, config } of keyed.instances('aws_s3_bucket_replication_configuration')) {
      const other = key === PRIMARY ? SECONDARY : PRIMARY;
      const byId = Object.fromEntries(config.rule.map((rule: Json) => [rule.id, rule]));
      expect(Object.keys(byId).sort()).toEqual([`to-${other}`, `to-${other}-tenant-acme`]);
      const tenant = byId[`to-${other}-tenant-acme`];
      // The tenant's objects are "acme/...": its rule outranks the general one, for the same destination.
      expect(tenant.filter).toEqual([{ prefix: 'acme/' }]);
      expect(tenant.priority).toBeGreaterThan(byId[`to-${other}`].priority);
      expect(tenant.destination[0].encryption_configuration).toEqual([{ replica_kms_key_id: new Unknown(`aws_kms_key.tenant["${other}:acme"].arn`) }]);
      expect(tenant.delete_marker_replication).toEqual([{ status: 'Enabled' }]);
      expect(new Set(config.rule.map((rule: Json) => rule.priority)).size).toBe(config.rule.length);
    }
    const statements = keyed.instance('aws_iam_policy_document', 'replication', undefined, 'data').statement;
    expect(statements.find((s: Json) => s.sid === 'ContentKeys').resources.map(String)).toEqual(
      expect.arrayContaining([PRIMARY, SECONDARY].map((region) => `<aws_kms_key.tenant["${region}:acme"].arn>`)),
    );
    expect(statements.find((s: Json) => s.sid === 'SourceObjectLock')).toMatchObject({ actions: ['s3:GetObjectLegalHold', 's3:GetObjectRetention'] });
    // Object Lock on both buckets: a replica of a locked object needs it at the destination.
    for (const plan of Object.values(regionsOf(keyed))) expect(plan.instances('aws_s3_bucket_object_lock_configuration')).toHaveLength(1);
  });

  it("deliver every region's deletes to the other region's invalidations queue, and only those", () => {
    const topicName = `${prefix}-${topicNameOf(defaultOf('DOCUMENT_EVENTS_TOPIC_ARN'))}`;
    const queueName = `${prefix}-${defaultOf('DOCUMENT_INVALIDATIONS_QUEUE')}`;
    const topicArn = (region: string) => `arn:aws:sns:${region}:${exampleAccountId}:${topicName}`;
    const queueArn = (region: string) => `arn:aws:sqs:${region}:${exampleAccountId}:${queueName}`;
    for (const [region, plan] of Object.entries(inRegion)) {
      expect(plan.instance('aws_sns_topic', 'document_events', 0)).toMatchObject({ region, name: topicName, kms_master_key_id: 'alias/aws/sns' });
      expect(plan.instance('aws_sqs_queue', 'document_invalidations', 0)).toMatchObject({ region, name: queueName, sqs_managed_sse_enabled: true });
      expect(JSON.parse(plan.instance('aws_sqs_queue', 'document_invalidations', 0).redrive_policy).deadLetterTargetArn).toBe(`${queueArn(region)}-dlq`);
      // Each queue takes messages from the other region's topic alone.
      const [statement, ...others] = plan.instance('aws_iam_policy_document', 'document_invalidations', 0, 'data').statement;
      expect(others).toHaveLength(0);
      expect(statement).toMatchObject({ actions: ['sqs:SendMessage'], resources: [queueArn(region)] });
      expect(statement.principals[0]).toEqual({ type: 'Service', identifiers: ['sns.amazonaws.com'] });
      expect(statement.condition[0]).toMatchObject({ test: 'ArnEquals', variable: 'aws:SourceArn', values: [topicArn(region === PRIMARY ? SECONDARY : PRIMARY)] });
    }
    const subscriptions = two.instances('aws_sns_topic_subscription').filter((each) => each.address.includes('document_invalidations'));
    expect(subscriptions.map(({ key, config }) => [key, config.region, config.topic_arn, config.endpoint])).toEqual([
      [`${PRIMARY}>${SECONDARY}`, PRIMARY, topicArn(PRIMARY), queueArn(SECONDARY)],
      [`${SECONDARY}>${PRIMARY}`, SECONDARY, topicArn(SECONDARY), queueArn(PRIMARY)],
    ]);
    for (const { config } of subscriptions) expect(config).toMatchObject({ protocol: 'sqs', raw_message_delivery: true });
  });

  it("route each client to the nearest region whose load balancer and readiness answer, through that region's HTTPS listener", () => {
    const records = two.instances('aws_route53_record').filter((record) => record.address.startsWith('aws_route53_record.api'));
    expect(records.map((record) => record.key)).toEqual([PRIMARY, SECONDARY].sort());
    const checks = Object.fromEntries(two.instances('aws_route53_health_check').map((check) => [check.key, check.config]));
    for (const { key, config } of records) {
      const region = inRegion[key as string]!;
      expect(config).toMatchObject({ zone_id: DNS.zone_id, name: DNS.name, type: 'A', set_identifier: key, latency_routing_policy: [{ region: key }] });
      const balancer = `${region.prefix}aws_lb.api.dns_name`;
      // The alias follows the load balancer's own target health: /health/ready on the nodes.
      expect(config.alias[0]).toMatchObject({ name: new Unknown(balancer), evaluate_target_health: true });
      expect(region.instance('aws_lb_target_group', 'api').health_check[0].path).toBe('/health/ready');
      expect(address(config.health_check_id)).toBe(`aws_route53_health_check.api["${key}"].id`);
      // The health check goes through the listener from the internet: a route it forwards, 503 while storage is down.
      expect(checks[key as string]).toMatchObject({ type: 'HTTPS', port: 443, resource_path: '/health', failure_threshold: 3 });
      expect(address(checks[key as string].fqdn)).toBe(balancer);
      expect(routes.api).toContain(checks[key as string].resource_path);
      const forwarded = region.instances('aws_lb_listener_rule').flatMap((rule: { config: Json }) => rule.config.condition[0].path_pattern[0].values);
      expect(forwarded).toContain(checks[key as string].resource_path);
    }
    expect(route).toBeDefined();
  });

  it("let each region's API reach the other region only where the document path goes: the global tables' replicas, the other bucket for reading and for resumable uploads homed there, its topic for the events of documents homed there", () => {
    for (const [region, plan] of Object.entries(inRegion)) {
      const other = region === PRIMARY ? SECONDARY : PRIMARY;
      const there = (plan.local.components as Json).api.statements.flatMap((s: Json) =>
        (s.resources as unknown[])
          .map(String)
          .filter((arn) => arn.includes(`:${other}:`) || arn.includes(`["${other}"]`) || arn.replace(/\/\*$/, '') === `arn:aws:s3:::${bucketOf[other]}`)
          .map((arn) => `${s.sid} ${s.actions.join(',')} ${arn}`),
      );
      const table = (name: string) => `arn:aws:dynamodb:${other}:${exampleAccountId}:table/${prefix}-${name}`;
      const tableActions = 'dynamodb:BatchGetItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:Query,dynamodb:UpdateItem';
      const expected = [
        `Tables ${tableActions} ${table('documents')}`,
        `Tables ${tableActions} ${table('documents')}/index/*`,
        `Tables ${tableActions} ${table('idempotency-keys')}`,
        `DocumentBucket s3:GetBucketObjectLockConfiguration,s3:ListBucket arn:aws:s3:::${bucketOf[other]}`,
        `OtherRegionsObjects s3:AbortMultipartUpload,s3:DeleteObject,s3:GetObject,s3:PutObject,s3:PutObjectLegalHold,s3:PutObjectRetention arn:aws:s3:::${bucketOf[other]}/*`,
        `PublishDocumentChanges sns:Publish arn:aws:sns:${other}:${exampleAccountId}:${prefix}-document-changes`,
        // The key of the other region's objects: the bucket's default one there.
        `ContentKeys kms:Decrypt,kms:GenerateDataKey <aws_kms_key.data["${other}"].arn>`,
      ];
      // Orders are the primary's, wherever the API runs.
      if (region === SECONDARY) expected.push(`Tables ${tableActions} ${table('orders')}`, `Tables ${tableActions} ${table('orders')}/index/*`, `PublishOrderEvents sns:GetTopicAttributes,sns:Publish arn:aws:sns:${PRIMARY}:${exampleAccountId}:${prefix}-order-events`);
      expect(there.sort()).toEqual(expected.sort());
    }
  });

  it("configure each region's pods with a valid configuration that names what terraform created there, and no secret", () => {
    const envs = two.output('region_k8s_env') as Record<string, string>;
    expect(Object.keys(envs).sort()).toEqual([PRIMARY, SECONDARY].sort());
    expect(two.output('k8s_env')).toBe(envs[PRIMARY]);
    for (const [region, text] of Object.entries(envs)) {
      const plan = inRegion[region]!;
      const env = parseEnvFile(text);
      for (const key of Object.keys(env)) expect(ConfigSchema.properties, key).toHaveProperty(key);
      // The Redis of the region, over TLS, without a password; its token is the region's secret.
      expect(env.REDIS_URL).toBe(`rediss://<${plan.prefix}aws_elasticache_replication_group.redis.primary_endpoint_address>:6379`);
      expect(env.REDIS_AUTH_SECRET_ID).toBe(`<${plan.prefix}aws_secretsmanager_secret.redis_auth.arn>`);
      expect(plan.instance('aws_secretsmanager_secret', 'redis_auth').region).toBe(region);
      const config = loadConfig({
        ...configMapEnv(),
        ...env,
        REDIS_URL: 'rediss://redis.example:6379',
        REDIS_AUTH_SECRET_ID: `arn:aws:secretsmanager:${region}:${exampleAccountId}:secret:${prefix}-redis-auth-x`,
        // What only apply knows of the region's distribution (its own, checked in cdn.test.ts).
        DOCUMENT_CDN_DOMAIN: 'd111111abcdef8.cloudfront.net',
        DOCUMENT_CDN_KEY_PAIR_ID: 'K2JCJMDEHXQW5F',
        DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: `arn:aws:secretsmanager:${region}:${exampleAccountId}:secret:${prefix}-cdn-private-key-x`,
      });
      expect(config.AWS_REGION).toBe(region);
      expect(config.DOCUMENTS_BUCKET).toBe(bucketOf[region]);
      expect(config.DOCUMENT_REGIONS).toBe(`${PRIMARY}=${bucketOf[PRIMARY]},${SECONDARY}=${bucketOf[SECONDARY]}`);
      expect(config.DOCUMENT_EVENTS_TOPIC_ARN).toBe(`arn:aws:sns:${region}:${exampleAccountId}:${prefix}-document-events`);
      expect(config.ORDER_EVENTS_TOPIC_ARN).toBe(`arn:aws:sns:${PRIMARY}:${exampleAccountId}:${prefix}-order-events`);
      expect(config.DOCUMENTS_TABLE).toBe(`${prefix}-documents`);
    }
    // For rotating each region's token: where it is, never what it is.
    const redis = two.output('region_redis') as Record<string, Json>;
    for (const [region, plan] of Object.entries(inRegion)) {
      expect(redis[region]).toEqual({
        auth_secret_arn: new Unknown(`${plan.prefix}aws_secretsmanager_secret.redis_auth.arn`),
        replication_group_id: new Unknown(`${plan.prefix}aws_elasticache_replication_group.redis.id`),
      });
    }
  });

  it("replicate the image to the second region's registry", () => {
    const rule = two.instance('aws_ecr_replication_configuration', 'images', 0).replication_configuration[0].rule[0];
    expect(rule.destination).toEqual([{ region: SECONDARY, registry_id: exampleAccountId }]);
    expect(rule.repository_filter[0]).toEqual({ filter: prefix, filter_type: 'PREFIX_MATCH' });
    const clusters = two.output('region_clusters') as Record<string, Json>;
    expect(clusters[SECONDARY].image_repository).toBe(`${exampleAccountId}.dkr.ecr.${SECONDARY}.amazonaws.com/${prefix}`);
  });
});

describe('k8s/components/multi-region: a region of several', () => {
  const component = readYaml('k8s/components/multi-region/kustomization.yaml');
  const [account, worker, budget] = readYamlDocuments('k8s/components/multi-region/invalidations.yaml');
  const base = readYamlDocuments('k8s/consumer.yaml')[0];

  it('adds the invalidation worker to k8s/, with the image of the other Deployments', () => {
    expect(component).toMatchObject({ kind: 'Component', resources: ['invalidations.yaml'] });
    expect(component.replacements[0]).toMatchObject({
      source: { kind: 'ConfigMap', name: 'docsvc-image', fieldPath: 'data.IMAGE' },
      targets: [{ select: { kind: 'Deployment', name: worker.metadata.name }, fieldPaths: ['spec.template.spec.containers.[name=app].image'] }],
    });
  });

  it('runs the invalidation worker as the other workers run: valid, hardened, probed, configured the same way, as a ServiceAccount of its own', () => {
    expect(() => new ServiceAccount(account).validate()).not.toThrow();
    expect(() => new Deployment(worker).validate()).not.toThrow();
    expect(() => new PodDisruptionBudget(budget).validate()).not.toThrow();
    const [container] = worker.spec.template.spec.containers;
    expect(container.command).toEqual(['node', 'dist/processes/invalidations.js']);
    expect(exists('src/processes/invalidations.ts')).toBe(true);
    // What the consumer's Deployment has, this one has too (but its name, account, command and resources).
    const same = (deployment: Json) => {
      const { command: _command, resources: _resources, ...rest } = deployment.spec.template.spec.containers[0];
      return { pod: { ...deployment.spec.template.spec, containers: undefined, topologySpreadConstraints: undefined, serviceAccountName: undefined }, container: rest };
    };
    expect(same(worker)).toEqual(same(base));
    // No Secret: its Redis token comes from REDIS_AUTH_SECRET_ID, read with its own role.
    expect(container.envFrom).toEqual([{ configMapRef: { name: 'docsvc-config' } }]);
    expect(worker.spec.template.spec.serviceAccountName).toBe(account.metadata.name);
    expect(account.metadata.labels['app.kubernetes.io/component']).toBe(worker.metadata.labels['app.kubernetes.io/component']);
    expect((primary!.local.components as Json).invalidations.service_account).toBe(account.metadata.name);
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) expect(routes.worker).toContain(probe.httpGet.path);
    expect(budget.spec.selector.matchLabels).toEqual(worker.spec.selector.matchLabels);
    expect(worker.spec.replicas).toBeGreaterThan(budget.spec.minAvailable);
  });

  it("is let in by the workers' NetworkPolicy of k8s/ alone: scrapes of its metrics port, from the monitoring namespace", () => {
    const labels: Record<string, string> = worker.spec.template.metadata.labels;
    const selects = (selector: Json) =>
      Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value) &&
      (selector.matchExpressions ?? []).every((e: Json) => (e.operator === 'NotIn' ? !e.values.includes(labels[e.key]) : e.values.includes(labels[e.key])));
    const allowing = k8sManifests()
      .map(({ doc }) => doc)
      .filter((doc) => doc.kind === 'NetworkPolicy' && selects(doc.spec.podSelector) && (doc.spec.ingress ?? []).length > 0);
    expect(allowing.map((policy) => policy.metadata.name)).toEqual(['docsvc-workers-scrape-only']);
    const metrics = worker.spec.template.spec.containers[0].ports.find((p: Json) => p.name === 'metrics').containerPort;
    expect(allowing[0].spec.ingress).toEqual([
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: metrics, protocol: 'TCP' }] },
    ]);
  });
});
