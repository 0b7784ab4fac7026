// terraform/ with two regions, expanded offline (plan.ts): each property of
// README "Multi-region documents" holds in what terraform would create, and
// one region (the default) creates none of it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { topicNameOf } from '../../src/bootstrap/resources.ts';
import { ConfigSchema, loadConfig } from '../../src/config.ts';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Unknown } from './hcl-eval.ts';
import { configMapEnv, defaultOf, exampleAccountId, exists, readYaml, readYamlDocuments, type Json, parseEnvFile, routes, terraformDir } from './helpers.ts';
import { Plan, loadBlocks } from './plan.ts';

const root = await loadBlocks(terraformDir);
const modules = { './modules/region': await loadBlocks(join(terraformDir, 'modules', 'region')) };

const PRIMARY = 'eu-west-1';
const SECONDARY = 'us-east-1';
const DNS = { zone_id: 'Z0123456789ABCDEFGHIJ', name: 'api.example.com' };
const two = new Plan(
  root,
  { region: PRIMARY, regions: [PRIMARY, SECONDARY], dns: DNS, certificate_arn: `arn:aws:acm:${PRIMARY}:${exampleAccountId}:certificate/0f0e` },
  modules,
);
const one = new Plan(root, {}, modules);
const [secondary] = two.moduleInstances('region');
const inSecondary = secondary!.plan;
const prefix = 'docsvc';
const bucketOf: Record<string, string> = { [PRIMARY]: `${prefix}-documents-${exampleAccountId}`, [SECONDARY]: `${prefix}-documents-${exampleAccountId}-${SECONDARY}` };
const unknown = (value: unknown) => (value instanceof Unknown ? value.address : value);

/** The resource types multi-region.tf declares. */
const multiRegionTypes = [...readFileSync(join(terraformDir, 'multi-region.tf'), 'utf8').matchAll(/^resource "([a-z0-9_]+)" "([a-z0-9_]+)"/gm)].map(([, type, name]) => ({ type: type!, name: name! }));

describe('one region (the default)', () => {
  it('creates nothing of the multi-region path: no module, no replica, no stream, no route', () => {
    expect(one.moduleInstances('region')).toEqual([]);
    for (const { type, name } of multiRegionTypes) {
      expect(one.instances(type).filter((instance) => instance.address.startsWith(`${type}.${name}`)), `${type}.${name}`).toEqual([]);
    }
    for (const table of one.instances('aws_dynamodb_table')) {
      expect(table.config.stream_enabled, table.address).toBe(false);
      expect(table.config.replica ?? [], table.address).toEqual([]);
    }
    expect(one.output('region_k8s_env')).toEqual({});
  });

  it('lists the regions in one variable, the primary first, and refuses two regions without a name to route by', () => {
    expect(root.variable.regions).toMatchObject({ type: '${list(string)}', default: [] });
    const topic = root.resource.aws_sns_topic!.document_events;
    const conditions = topic.lifecycle[0].precondition.map((check: Json) => check.condition);
    expect(conditions).toEqual(['${var.regions[0] == var.region}', '${var.dns != null && var.certificate_arn != null}']);
  });
});

describe('two regions', () => {
  it('deploy the document path in the second region: VPC, EKS, load balancer, Redis, bucket, all placed there', () => {
    expect(two.moduleInstances('region').map(({ key }) => key)).toEqual([SECONDARY]);
    const blocks = modules['./modules/region'];
    expect(blocks.module.vpc).toMatchObject({ source: 'terraform-aws-modules/vpc/aws', version: root.module.vpc.version, region: '${var.region}' });
    expect(blocks.module.eks).toMatchObject({ source: 'terraform-aws-modules/eks/aws', version: root.module.eks.version, region: '${var.region}' });
    // Every regional resource of the module is in that region (IAM, Route 53 and random are global).
    for (const [type, byName] of Object.entries(blocks.resource)) {
      if (/^(aws_iam_|aws_route53_|random_)/.test(type)) continue;
      for (const name of Object.keys(byName)) {
        for (const instance of inSecondary.instances(type).filter((each) => each.address.includes(`${type}.${name}`))) {
          expect(instance.config.region, instance.address).toBe(SECONDARY);
        }
      }
    }
    const lb = inSecondary.instance('aws_lb', 'api');
    expect(lb).toMatchObject({ load_balancer_type: 'application', internal: false, drop_invalid_header_fields: true });
    const health = inSecondary.instance('aws_lb_target_group', 'api').health_check[0];
    expect(routes.api).toContain(health.path);
    const https = inSecondary.instance('aws_lb_listener', 'https');
    expect(https).toMatchObject({ port: 443, protocol: 'HTTPS' });
    expect(https.ssl_policy).toMatch(/TLS13/);
    expect(inSecondary.instance('aws_acm_certificate', 'api')).toMatchObject({ domain_name: DNS.name, validation_method: 'DNS', region: SECONDARY });
    expect(inSecondary.instance('aws_lb_listener', 'http').default_action[0]).toMatchObject({ type: 'redirect' });
    const redis = inSecondary.instance('aws_elasticache_replication_group', 'redis');
    expect(redis).toMatchObject({ transit_encryption_enabled: true, at_rest_encryption_enabled: true, automatic_failover_enabled: true, multi_az_enabled: true });
    // The AUTH token is the one kept in the region's Secrets Manager.
    expect(unknown(redis.auth_token)).toBe(unknown(inSecondary.instance('aws_secretsmanager_secret_version', 'redis_auth').secret_string));
  });

  it('make the documents and idempotency tables global tables, and keep orders in the primary', () => {
    const tables = Object.fromEntries(two.instances('aws_dynamodb_table').map((table) => [table.key, table.config]));
    for (const name of ['documents', 'idempotency-keys']) {
      expect(tables[name].stream_enabled, name).toBe(true);
      expect(tables[name].stream_view_type).toBe('NEW_AND_OLD_IMAGES');
      expect(tables[name].replica).toEqual([{ region_name: SECONDARY, point_in_time_recovery: true, propagate_tags: true }]);
    }
    for (const name of ['orders', 'order-consumer']) {
      expect(tables[name].replica ?? [], name).toEqual([]);
      expect(tables[name].stream_enabled).toBe(false);
    }
    // The service's names for the global tables are those of its configuration.
    expect(two.local.global_tables).toEqual([defaultOf('DOCUMENTS_TABLE'), defaultOf('IDEMPOTENCY_TABLE')]);
    // The second region has no tables, topic or queues of orders of its own.
    expect(inSecondary.instances('aws_dynamodb_table')).toEqual([]);
    expect(inSecondary.instances('aws_sns_topic').map((topic) => topic.config.name)).toEqual([`${prefix}-document-events`]);
  });

  it('replicate content between the two buckets, both ways, delete markers included', () => {
    expect(two.local.bucket_names).toEqual(bucketOf);
    expect(inSecondary.instance('aws_s3_bucket', 'documents').bucket).toBe(bucketOf[SECONDARY]);
    expect(inSecondary.instance('aws_s3_bucket_versioning', 'documents').versioning_configuration[0].status).toBe('Enabled');
    expect(two.instance('aws_s3_bucket_versioning', 'documents').versioning_configuration[0].status).toBe('Enabled');
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
          filter: [{}],
          delete_marker_replication: [{ status: 'Enabled' }],
          destination: [{ bucket: `arn:aws:s3:::${bucketOf[other]}`, storage_class: 'STANDARD' }],
        },
      ]);
      expect(unknown(config.role)).toBe('aws_iam_role.replication[0].arn');
    }
    const trust = two.instance('aws_iam_policy_document', 'replication_trust', undefined, 'data').statement[0];
    expect(trust.principals[0]).toEqual({ type: 'Service', identifiers: ['s3.amazonaws.com'] });
    const statements = two.instance('aws_iam_policy_document', 'replication', undefined, 'data').statement;
    const buckets = Object.values(bucketOf).map((bucket) => `arn:aws:s3:::${bucket}`).sort();
    expect(statements.find((s: Json) => s.sid === 'SourceBuckets').resources.sort()).toEqual(buckets);
    expect(statements.find((s: Json) => s.sid === 'DestinationObjects').actions).toEqual(['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags']);
  });

  it("deliver every region's deletes to the other region's invalidations queue, and only those", () => {
    const topicName = `${prefix}-${topicNameOf(defaultOf('DOCUMENT_EVENTS_TOPIC_ARN'))}`;
    const queueName = `${prefix}-${defaultOf('DOCUMENT_INVALIDATIONS_QUEUE')}`;
    expect(two.instance('aws_sns_topic', 'document_events', 0).name).toBe(topicName);
    expect(two.instance('aws_sqs_queue', 'document_invalidations', 0).name).toBe(queueName);
    expect(inSecondary.instance('aws_sqs_queue', 'document_invalidations').name).toBe(queueName);
    const topicArn = (region: string) => `arn:aws:sns:${region}:${exampleAccountId}:${topicName}`;
    const queueArn = (region: string) => `arn:aws:sqs:${region}:${exampleAccountId}:${queueName}`;
    const subscriptions = two.instances('aws_sns_topic_subscription').filter((each) => each.address.includes('document_invalidations'));
    expect(subscriptions.map(({ key, config }) => [key, config.region, config.topic_arn, config.endpoint])).toEqual([
      [`${PRIMARY}>${SECONDARY}`, PRIMARY, topicArn(PRIMARY), queueArn(SECONDARY)],
      [`${SECONDARY}>${PRIMARY}`, SECONDARY, topicArn(SECONDARY), queueArn(PRIMARY)],
    ]);
    for (const { config } of subscriptions) expect(config).toMatchObject({ protocol: 'sqs', raw_message_delivery: true });
    // Each queue takes messages from the other region's topic alone.
    const policies = [
      [two.instance('aws_iam_policy_document', 'document_invalidations', 0, 'data'), PRIMARY],
      [inSecondary.instance('aws_iam_policy_document', 'document_invalidations', undefined, 'data'), SECONDARY],
    ] as const;
    for (const [policy, region] of policies) {
      const [statement, ...others] = policy.statement;
      expect(others).toHaveLength(0);
      expect(statement.actions).toEqual(['sqs:SendMessage']);
      expect(statement.principals[0]).toEqual({ type: 'Service', identifiers: ['sns.amazonaws.com'] });
      expect(statement.condition[0]).toMatchObject({ test: 'ArnEquals', variable: 'aws:SourceArn', values: [topicArn(region === PRIMARY ? SECONDARY : PRIMARY)] });
    }
  });

  it("route each client to the nearest region whose /health/ready answers, through that region's load balancer", () => {
    const records = two.instances('aws_route53_record').filter((record) => record.address.startsWith('aws_route53_record.api'));
    expect(records.map((record) => record.key)).toEqual([PRIMARY, SECONDARY].sort());
    const checks = Object.fromEntries(two.instances('aws_route53_health_check').map((check) => [check.key, check.config]));
    for (const { key, config } of records) {
      expect(config).toMatchObject({ zone_id: DNS.zone_id, name: DNS.name, type: 'A', set_identifier: key, latency_routing_policy: [{ region: key }] });
      const alias = config.alias[0];
      expect(alias.evaluate_target_health).toBe(true);
      const balancer = key === PRIMARY ? 'aws_lb.api.dns_name' : `module.region["${SECONDARY}"].load_balancer.dns_name`;
      expect(unknown(alias.name)).toBe(balancer);
      expect(unknown(config.health_check_id)).toBe(`aws_route53_health_check.api["${key}"].id`);
      expect(checks[key as string]).toMatchObject({ type: 'HTTPS', port: 443, resource_path: '/health/ready', failure_threshold: 3 });
      expect(unknown(checks[key as string].fqdn)).toBe(balancer);
      expect(routes.api).toContain(checks[key as string].resource_path);
    }
  });

  it("give each region's pods what they call and no more: the global tables in every region, their bucket, the others' for reading, their topic and queue, the primary's orders", () => {
    const role = inSecondary.instance('aws_eks_pod_identity_association', 'app');
    expect(role).toMatchObject({ region: SECONDARY, namespace: 'docsvc', service_account: 'docsvc' });
    const trust = inSecondary.instance('aws_iam_policy_document', 'app_trust', undefined, 'data').statement[0];
    expect(trust.principals[0]).toEqual({ type: 'Service', identifiers: ['pods.eks.amazonaws.com'] });
    expect(unknown(trust.condition.find((c: Json) => c.variable === 'aws:SourceArn').values[0])).toBe(`module.region["${SECONDARY}"].module.eks.cluster_arn`);
    const statements: Json[] = inSecondary.instance('aws_iam_policy_document', 'app', undefined, 'data').statement;
    const bySid = (sid: string) => statements.find((statement) => statement.sid === sid);
    const tables = (bySid('Tables').resources as unknown[]).map(unknown);
    for (const region of [PRIMARY, SECONDARY]) {
      for (const table of ['documents', 'idempotency-keys']) expect(tables).toContain(`arn:aws:dynamodb:${region}:${exampleAccountId}:table/${prefix}-${table}`);
    }
    expect(tables).toContain('aws_dynamodb_table.this["orders"].arn');
    expect(bySid('OtherRegionsObjects')).toMatchObject({ actions: ['s3:GetObject'], resources: [`arn:aws:s3:::${bucketOf[PRIMARY]}/*`] });
    expect(bySid('DocumentBuckets').resources.map(unknown)).toContain(`arn:aws:s3:::${bucketOf[PRIMARY]}`);
    for (const statement of statements) {
      for (const action of statement.actions as string[]) expect(action, statement.sid).not.toMatch(/\*|^(dynamodb:Create|dynamodb:DeleteTable|s3:DeleteBucket|s3:PutBucket|sns:Create|sqs:Create)/);
      for (const resource of statement.resources as unknown[]) expect(unknown(resource), statement.sid).not.toBe('*');
    }
    // The primary's pods get the same reach into the second region.
    const primary: Json[] = two.instance('aws_iam_policy_document', 'app_multi_region', 0, 'data').statement;
    expect(primary.find((s) => s.sid === 'OtherRegionsTables').resources).toContain(`arn:aws:dynamodb:${SECONDARY}:${exampleAccountId}:table/${prefix}-documents`);
    expect(primary.find((s) => s.sid === 'OtherRegionsObjects').resources).toEqual([`arn:aws:s3:::${bucketOf[SECONDARY]}/*`]);
    expect(unknown(two.instance('aws_iam_role_policy', 'app_multi_region', 0).role)).toBe('aws_iam_role.app.id');
  });

  it("configure each region's pods with a valid configuration that names what terraform created", () => {
    const envs = two.output('region_k8s_env') as Record<string, string>;
    expect(Object.keys(envs).sort()).toEqual([PRIMARY, SECONDARY].sort());
    for (const [region, text] of Object.entries(envs)) {
      const env = parseEnvFile(text.replace(/<[^>]+>/g, 'x'));
      for (const key of Object.keys(env)) expect(ConfigSchema.properties, key).toHaveProperty(key);
      const config = loadConfig({ ...configMapEnv(), ...env, REDIS_URL: 'rediss://:token@redis:6379', ORDER_EVENTS_TOPIC_ARN: `arn:aws:sns:${PRIMARY}:${exampleAccountId}:${prefix}-order-events` });
      expect(config.AWS_REGION).toBe(region);
      expect(config.DOCUMENTS_BUCKET).toBe(bucketOf[region]);
      expect(config.DOCUMENT_REGIONS).toBe(`${PRIMARY}=${bucketOf[PRIMARY]},${SECONDARY}=${bucketOf[SECONDARY]}`);
      expect(config.DOCUMENT_EVENTS_TOPIC_ARN).toBe(`arn:aws:sns:${region}:${exampleAccountId}:${prefix}-document-events`);
      expect(config.DOCUMENTS_TABLE).toBe(`${prefix}-documents`);
    }
  });

  it("replicate the image to the second region's registry", () => {
    const rule = two.instance('aws_ecr_replication_configuration', 'images', 0).replication_configuration[0].rule[0];
    expect(rule.destination).toEqual([{ region: SECONDARY, registry_id: exampleAccountId }]);
    expect(rule.repository_filter[0]).toEqual({ filter: prefix, filter_type: 'PREFIX_MATCH' });
  });
});

describe('k8s/components/multi-region: a region of several', () => {
  const component = readYaml('k8s/components/multi-region/kustomization.yaml');
  const [worker, budget] = readYamlDocuments('k8s/components/multi-region/invalidations.yaml');
  const base = readYamlDocuments('k8s/consumer.yaml')[0];

  it('adds the invalidation worker to k8s/, with the image of the other Deployments', () => {
    expect(component).toMatchObject({ kind: 'Component', resources: ['invalidations.yaml'] });
    expect(component.replacements[0]).toMatchObject({
      source: { kind: 'ConfigMap', name: 'docsvc-image', fieldPath: 'data.IMAGE' },
      targets: [{ select: { kind: 'Deployment', name: worker.metadata.name }, fieldPaths: ['spec.template.spec.containers.[name=app].image'] }],
    });
  });

  it('runs the invalidation worker as the other workers run: valid, hardened, probed, configured the same way', () => {
    expect(() => new Deployment(worker).validate()).not.toThrow();
    expect(() => new PodDisruptionBudget(budget).validate()).not.toThrow();
    const [container] = worker.spec.template.spec.containers;
    expect(container.command).toEqual(['node', 'dist/invalidation-worker.js']);
    expect(exists('src/invalidation-worker.ts')).toBe(true);
    // What the consumer's Deployment has, this one has too (but its name, command and resources).
    const same = (deployment: Json) => {
      const { command: _command, resources: _resources, ...rest } = deployment.spec.template.spec.containers[0];
      return { pod: { ...deployment.spec.template.spec, containers: undefined, topologySpreadConstraints: undefined }, container: rest };
    };
    expect(same(worker)).toEqual(same(base));
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) expect(routes.worker).toContain(probe.httpGet.path);
    expect(budget.spec.selector.matchLabels).toEqual(worker.spec.selector.matchLabels);
    expect(worker.spec.replicas).toBeGreaterThan(budget.spec.minAvailable);
  });
});

