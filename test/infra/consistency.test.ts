// Consistency across the artefacts, so they cannot drift apart: the config
// schema, both compose files, the k8s manifests, terraform and the bootstrap
// agree on variables, names, ports, routes, identities and entry points.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableDefinitions, topicNameOf } from '../../src/bootstrap/resources.ts';
import { ConfigSchema, loadConfig } from '../../src/config.ts';
import {
  awsSdkVariables,
  components,
  composeFiles,
  configMapEnv,
  defaultOf,
  entryPoints,
  exampleAccountId,
  exists,
  type Json,
  k8sManifests,
  listTs,
  loadTerraform,
  parseEnvFile,
  readCompose,
  readText,
  resourceNameKeys,
  resourceOf,
  root,
  routes,
  runtimeGraph,
  sourceOf,
  tools,
} from './helpers.ts';
import { Unknown } from './hcl-eval.ts';
import { one, regionsOf } from './deployments.ts';

const schemaKeys = new Set(Object.keys(ConfigSchema.properties));
/** Variables the service cannot start without: required by the schema and without a default. */
const mandatory = (ConfigSchema.required as string[]).filter(
  (key) => !('default' in (ConfigSchema.properties as Record<string, object>)[key]!),
);

/** The processes of the image in a compose file. */
const appServices = ['api', 'relay', 'consumer', 'lifecycle', 'bootstrap'] as const;
const composeEnv = (file: string, service: string): Record<string, string> =>
  Object.fromEntries(Object.entries(readCompose(file).services[service].environment).map(([k, v]) => [k, String(v)]));
/** Everything but the port the process listens on. */
const sharedEnv = (file: string, service: string) => {
  const { PORT: _port, METRICS_PORT: _metrics, ...rest } = composeEnv(file, service);
  return rest;
};

const manifests = k8sManifests();
const deployments = manifests.filter(({ doc }) => doc.kind === 'Deployment').map(({ doc }) => doc);
const deploymentOf = (component: string): Json =>
  deployments.find((d) => d.metadata.labels['app.kubernetes.io/component'] === component);
const secretEnv = parseEnvFile(readText('k8s/secret.env.example'));
const k8sEnv = (): Record<string, string> => {
  const explicit = deployments.flatMap((d) => d.spec.template.spec.containers.flatMap((c: Json) => c.env ?? []));
  return { ...configMapEnv(), ...secretEnv, ...Object.fromEntries(explicit.map((e: Json) => [e.name, e.value])) };
};

const tf = await loadTerraform();
const awsExample = parseEnvFile(readText('k8s/aws.env.example'));
const primary = Object.values(regionsOf(one))[0]!;
// What only AWS knows after apply stands in as the example shows it; its shape is checked below.
const afterApply: Record<string, string> = {
  [`${primary.prefix}aws_elasticache_replication_group.redis.primary_endpoint_address`]: new URL(awsExample.REDIS_URL ?? 'rediss://missing').hostname,
  [`${primary.prefix}aws_secretsmanager_secret.redis_auth.arn`]: awsExample.REDIS_AUTH_SECRET_ID ?? 'missing',
  [`${primary.prefix}aws_cloudfront_distribution.documents[0].domain_name`]: awsExample.DOCUMENT_CDN_DOMAIN ?? 'missing',
  [`${primary.prefix}aws_cloudfront_public_key.links[0].id`]: awsExample.DOCUMENT_CDN_KEY_PAIR_ID ?? 'missing',
  [`${primary.prefix}aws_secretsmanager_secret.cdn_private_key[0].arn`]: awsExample.DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID ?? 'missing',
};
const known = (text: string) => text.replace(/<([^>]+)>/g, (unknown, address: string) => afterApply[address] ?? unknown);
const prefix = String(one.variable('name'));
const region = String(one.variable('region'));

describe.each(composeFiles)('%s', (file) => {
  it('sets only config variables on the app (plus the AWS SDK credentials the emulators need)', () => {
    for (const service of appServices) {
      for (const key of Object.keys(composeEnv(file, service))) {
        expect(schemaKeys.has(key) || awsSdkVariables.has(key), `${service}: ${key}`).toBe(true);
      }
    }
  });

  it('gives every process of the image the same, valid configuration, but for the port it listens on', () => {
    const api = sharedEnv(file, 'api');
    for (const service of appServices) expect(sharedEnv(file, service), service).toEqual(api);
    expect(composeEnv(file, 'api')).toHaveProperty('PORT');
    for (const service of ['relay', 'consumer', 'lifecycle']) expect(composeEnv(file, service), service).toHaveProperty('METRICS_PORT');
    for (const key of mandatory) expect(api, key).toHaveProperty(key);
    const config = loadConfig(composeEnv(file, 'api'));
    expect(config.AUTH_MODE).toBe('none');
    expect(config.S3_FORCE_PATH_STYLE).toBe(true);
    expect(config.ORDER_EVENTS_TOPIC_ARN.split(':')[3]).toBe(config.AWS_REGION);
  });

  it('uses the config defaults for resource names, which the bootstrap creates', () => {
    const env = composeEnv(file, 'bootstrap');
    for (const key of resourceNameKeys) expect(env[key], key).toBe(defaultOf(key));
    expect(env.CONSUMER_MAX_RECEIVES).toBe(defaultOf('CONSUMER_MAX_RECEIVES'));
  });
});

describe('the compose files reach their emulators', () => {
  it('docker-compose.yml: LocalStack and Redis by their service names', () => {
    const compose = readCompose('docker-compose.yml');
    const env = composeEnv('docker-compose.yml', 'api');
    const localstackPort = /:(\d+)$/.exec(compose.services.localstack.ports[0])?.[1];
    expect(env.AWS_ENDPOINT_URL).toBe(`http://localstack:${localstackPort}`);
    expect(new URL(env.REDIS_URL ?? '').hostname).toBe('redis');
  });

  it('docker-compose.emulators.yml: on the loopback ports the emulators service listens on', () => {
    const file = 'docker-compose.emulators.yml';
    const emulators = composeEnv(file, 'emulators');
    const env = composeEnv(file, 'api');
    expect(env.HOST).toBe('127.0.0.1');
    expect(env.AWS_ENDPOINT_URL).toBe(`http://127.0.0.1:${emulators.AWS_EMULATOR_PORT}`);
    expect(env.AWS_ENDPOINT_URL_DYNAMODB).toBe(`http://127.0.0.1:${emulators.DYNAMODB_EMULATOR_PORT}`);
    expect(env.REDIS_URL).toBe(`redis://127.0.0.1:${emulators.REDIS_PORT}`);
  });
});

describe('k8s environment', () => {
  it('sets only config variables, and no AWS credentials (Pod Identity provides them)', () => {
    const env = k8sEnv();
    for (const key of Object.keys(env)) expect(schemaKeys.has(key), key).toBe(true);
    for (const key of awsSdkVariables) expect(env).not.toHaveProperty(key);
    expect(env).not.toHaveProperty('AWS_ENDPOINT_URL');
  });

  it('is a valid production configuration, with authentication on and Redis over TLS', () => {
    const env = k8sEnv();
    for (const key of [...mandatory, ...resourceNameKeys, 'AWS_REGION', 'NODE_ENV', 'AUTH_MODE', 'REDIS_AUTH_SECRET_ID']) {
      expect(env, key).toHaveProperty(key);
    }
    const config = loadConfig(env);
    expect(config.NODE_ENV).toBe('production');
    expect(config.AUTH_MODE).toBe('api-key');
    expect(config.REDIS_URL).toMatch(/^rediss:\/\//); // ElastiCache has in-transit encryption on
  });

  it('holds no secret in the ConfigMap: the API keys are in a Secret, the Redis token in Secrets Manager only', () => {
    const configMap = configMapEnv();
    expect(Object.keys(secretEnv)).toEqual(['API_KEYS']);
    expect(configMap).not.toHaveProperty('API_KEYS');
    const redis = new URL(configMap.REDIS_URL ?? '');
    expect(redis.password).toBe('');
    expect(redis.username).toBe('');
    expect(configMap.REDIS_AUTH_SECRET_ID).toMatch(
      new RegExp(`^arn:aws:secretsmanager:${region}:${exampleAccountId}:secret:${prefix}-redis-auth-`),
    );
    expect(redis.hostname).toMatch(/\.cache\.amazonaws\.com$/);
  });

  it('gives the Secret to the API only', () => {
    for (const d of deployments) {
      const secretRefs = d.spec.template.spec.containers.flatMap((c: Json) => (c.envFrom ?? []).filter((e: Json) => e.secretRef));
      const component = d.metadata.labels['app.kubernetes.io/component'];
      expect(secretRefs.length, component).toBe(component === 'api' ? 1 : 0);
    }
  });
});

describe('resource names', () => {
  it('k8s/aws.env.example is exactly what `terraform output k8s_env` prints with the defaults', () => {
    const printed = known(String(one.output('k8s_env')));
    expect(printed).not.toMatch(/[<>]/);
    expect(parseEnvFile(printed)).toEqual(awsExample);
    expect(Object.keys(parseEnvFile(printed)).sort()).toEqual(
      [
        ...resourceNameKeys,
        ...['AWS_REGION', 'CONSUMER_MAX_RECEIVES', 'REDIS_URL', 'REDIS_AUTH_SECRET_ID', 'DOCUMENTS_KMS_KEY_ID', 'TENANT_KMS_KEYS'],
        ...['DOCUMENT_CDN_DOMAIN', 'DOCUMENT_CDN_KEY_PAIR_ID', 'DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID'],
      ].sort(),
    );
  });

  it('AWS names are the local names with the terraform prefix', () => {
    const aws = awsExample;
    expect(aws.AWS_REGION).toBe(region);
    for (const key of ['DOCUMENTS_TABLE', 'IDEMPOTENCY_TABLE', 'ORDERS_TABLE', 'CONSUMER_TABLE', 'ORDER_EVENTS_QUEUE', 'ORDER_EVENTS_DLQ'] as const) {
      expect(aws[key], key).toBe(`${prefix}-${defaultOf(key)}`);
    }
    // Bucket names are global: the account id makes this one unique.
    expect(aws.DOCUMENTS_BUCKET).toBe(`${prefix}-${defaultOf('DOCUMENTS_BUCKET')}-${exampleAccountId}`);
    const topic = topicNameOf(defaultOf('ORDER_EVENTS_TOPIC_ARN'));
    expect(aws.ORDER_EVENTS_TOPIC_ARN).toBe(`arn:aws:sns:${region}:${exampleAccountId}:${prefix}-${topic}`);
  });

  it('terraform creates the tables the bootstrap creates: same keys, index and TTL', () => {
    const local = loadConfig({});
    const tables: Record<string, Json> = tf.locals.tables;
    const bootstrap = tableDefinitions(local);
    expect(bootstrap.map((t) => t.name).sort()).toEqual(Object.keys(tables).sort());
    for (const table of bootstrap) {
      const spec = tables[table.name];
      expect(spec.ttl, table.name).toBe(table.ttlAttribute);
      const attributes = Object.fromEntries(
        (table.input.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]),
      );
      expect(spec.attributes, table.name).toEqual(attributes);
      const hash = table.input.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
      expect(spec.hash_key, table.name).toBe(hash);
      expect(table.input.KeySchema?.filter((k) => k.KeyType === 'RANGE') ?? []).toHaveLength(0);
      const indexes = (table.input.GlobalSecondaryIndexes ?? []).map((index) => ({
        name: index.IndexName,
        hash_key: index.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName,
        range_key: index.KeySchema?.find((k) => k.KeyType === 'RANGE')?.AttributeName,
        projection: index.Projection?.ProjectionType,
        ...(index.Projection?.NonKeyAttributes ? { non_key_attributes: index.Projection.NonKeyAttributes } : {}),
      }));
      expect(spec.indexes, table.name).toEqual(indexes);
    }
  });

  it('terraform subscribes the queue with the raw delivery setting the bootstrap uses', () => {
    const raw = resourceOf(tf, 'aws_sns_topic_subscription', 'order_events').raw_message_delivery;
    const bootstrap = /RawMessageDelivery:\s*'(true|false)'/.exec(readText('src/bootstrap/resources.ts'))?.[1];
    expect(String(raw)).toBe(bootstrap);
  });

  it('every artefact redrives after the same number of receives', () => {
    const receives = String(one.variable('consumer_max_receives'));
    for (const file of composeFiles) expect(composeEnv(file, 'consumer').CONSUMER_MAX_RECEIVES, file).toBe(receives);
    expect(configMapEnv().CONSUMER_MAX_RECEIVES).toBe(receives);
    expect(defaultOf('CONSUMER_MAX_RECEIVES')).toBe(receives);
  });
});

describe('ports, identities, routes and entry points', () => {
  it('the Service nodePort is the port the load balancer target group forwards to', () => {
    const service = manifests.find(({ doc }) => doc.kind === 'Service')?.doc;
    const nodePort = service.spec.ports[0].nodePort;
    expect(primary.instance('aws_lb_target_group', 'api').port).toBe(nodePort);
    expect(one.variable('node_port')).toBe(nodePort);
  });

  it('gives every component a ServiceAccount of its own, which Pod Identity binds to its own role', () => {
    const namespace = manifests.find(({ doc }) => doc.kind === 'Namespace')?.doc.metadata.name;
    const accounts = manifests.filter(({ doc }) => doc.kind === 'ServiceAccount').map(({ doc }) => doc.metadata.name);
    const identities = primary.local.components as Record<string, Json>;
    expect(Object.keys(identities).sort()).toEqual(components());
    for (const component of components()) {
      const account = deploymentOf(component).spec.template.spec.serviceAccountName;
      expect(identities[component].service_account, component).toBe(account);
      expect(accounts, component).toContain(account);
      expect(primary.instance('aws_eks_pod_identity_association', 'component', component)).toMatchObject({
        namespace,
        service_account: account,
        role_arn: new Unknown(`${primary.prefix}aws_iam_role.component["${component}"].arn`),
      });
    }
    expect(new Set(accounts).size).toBe(components().length);
  });

  it('every probed or health-checked path is a route that src/ defines', () => {
    const sources = listTs(join(root, 'src')).map((file) => readFileSync(file, 'utf8'));
    const defined = (path: string) => sources.some((source) => source.includes(`'${path}'`) || source.includes(`"${path}"`));
    const composeChecks = composeFiles.flatMap((file) =>
      Object.values(readCompose(file).services as Record<string, Json>).flatMap((s) => s.healthcheck?.test ?? []),
    );
    const paths = new Set<string>([
      primary.instance('aws_lb_target_group', 'api').health_check[0].path,
      ...deployments.flatMap((d) =>
        d.spec.template.spec.containers.flatMap((c: Json) =>
          ['startupProbe', 'readinessProbe', 'livenessProbe'].map((probe) => c[probe].httpGet.path),
        ),
      ),
      ...composeChecks.filter((arg: string) => arg.startsWith('/health')),
    ]);
    expect(paths.size).toBeGreaterThan(0);
    for (const path of paths) {
      expect([...routes.api, ...routes.worker]).toContain(path);
      expect(defined(path), `${path} in src/`).toBe(true);
    }
  });

  it('every command runs an entry point that src/ compiles, the service needing production dependencies only', () => {
    const services = composeFiles.flatMap((file) => Object.values(readCompose(file).services as Record<string, Json>));
    const commands = [
      ...deployments.map((d) => d.spec.template.spec.containers[0].command),
      ...services.flatMap((s) => (s.command ? [s.command] : [])),
      ...services.flatMap((s) => (s.healthcheck?.test?.[1] === 'node' ? [s.healthcheck.test.slice(1)] : [])),
    ];
    const used = new Set(commands.map((command: string[]) => command[1]));
    expect([...used].sort()).toEqual([...Object.values(entryPoints), ...Object.values(tools)].sort());
    const production = new Set(Object.keys(JSON.parse(readText('package.json')).dependencies));
    for (const entry of [...Object.values(entryPoints), tools.healthcheck]) {
      const source = sourceOf(entry);
      expect(exists(source), source).toBe(true);
      // The image has `npm ci --omit=dev`: a devDependency reached from here would crash it.
      for (const pkg of runtimeGraph(source).packages) expect(production, `${source} → ${pkg}`).toContain(pkg);
    }
  });

  it('the emulators image installs exactly the packages its stack loads', () => {
    const installed = /\[((?:'[\w@/.-]+',?\s*)+)\]\.map\(\(n\) => n \+ '@'/.exec(readText('Dockerfile'))?.[1];
    expect(installed).toBeDefined();
    const names = [...(installed ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
    expect(names).toEqual([...runtimeGraph(sourceOf(tools.emulators)).packages].sort());
  });
});
