// Consistency across the artefacts, so they cannot drift apart: the config
// schema, compose, the k8s manifests, terraform and the bootstrap agree on
// variables, names, ports, routes and entry points.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableDefinitions, topicNameOf } from '../../src/bootstrap/resources.ts';
import { ConfigSchema, loadConfig } from '../../src/config.ts';
import {
  awsSdkVariables,
  blockOf,
  configMapEnv,
  defaultOf,
  entryPoints,
  exampleAccountId,
  exists,
  type Json,
  k8sManifests,
  loadTerraform,
  parseEnvFile,
  readText,
  readYaml,
  resourceNameKeys,
  resourceOf,
  root,
  routes,
  TerraformNames,
} from './helpers.ts';

const schemaKeys = new Set(Object.keys(ConfigSchema.properties));
/** Variables the service cannot start without: required by the schema and without a default. */
const mandatory = (ConfigSchema.required as string[]).filter(
  (key) => !('default' in (ConfigSchema.properties as Record<string, object>)[key]!),
);

const compose = readYaml('docker-compose.yml');
const composeEnv = (service: string): Record<string, string> =>
  Object.fromEntries(Object.entries(compose.services[service].environment).map(([k, v]) => [k, String(v)]));

const manifests = k8sManifests();
const deployments = manifests.filter(({ doc }) => doc.kind === 'Deployment').map(({ doc }) => doc);
const secretEnv = parseEnvFile(readText('k8s/secret.env.example'));
const k8sEnv = (): Record<string, string> => {
  const explicit = deployments.flatMap((d) => d.spec.template.spec.containers.flatMap((c: Json) => c.env ?? []));
  return { ...configMapEnv(), ...secretEnv, ...Object.fromEntries(explicit.map((e: Json) => [e.name, e.value])) };
};

const tf = await loadTerraform();
const tfNames = new TerraformNames(tf);
const prefix = String(tfNames.variable('name'));

describe('environment variables', () => {
  it('compose sets only config variables (plus the AWS SDK credentials LocalStack needs)', () => {
    for (const service of ['api', 'relay', 'consumer', 'bootstrap']) {
      for (const key of Object.keys(composeEnv(service))) {
        expect(schemaKeys.has(key) || awsSdkVariables.has(key), `${service}: ${key}`).toBe(true);
      }
    }
  });

  it('compose gives every process of the image the same, valid configuration', () => {
    const api = composeEnv('api');
    for (const service of ['relay', 'consumer', 'bootstrap']) expect(composeEnv(service), service).toEqual(api);
    for (const key of mandatory) expect(api, key).toHaveProperty(key);
    const config = loadConfig(api);
    expect(config.AUTH_MODE).toBe('none');
    expect(config.S3_FORCE_PATH_STYLE).toBe(true);
  });

  it('compose reaches LocalStack and Redis by their service names', () => {
    const env = composeEnv('api');
    const localstackPort = /:(\d+)$/.exec(compose.services.localstack.ports[0])?.[1];
    expect(env.AWS_ENDPOINT_URL).toBe(`http://localstack:${localstackPort}`);
    expect(new URL(env.REDIS_URL ?? '').hostname).toBe('redis');
    expect(env.ORDER_EVENTS_TOPIC_ARN?.split(':')[3]).toBe(env.AWS_REGION);
  });

  it('k8s sets only config variables, and no AWS credentials (Pod Identity provides them)', () => {
    const env = k8sEnv();
    for (const key of Object.keys(env)) expect(schemaKeys.has(key), key).toBe(true);
    for (const key of awsSdkVariables) expect(env).not.toHaveProperty(key);
    expect(env).not.toHaveProperty('AWS_ENDPOINT_URL');
  });

  it('k8s gives a valid production configuration, with authentication on', () => {
    const env = k8sEnv();
    for (const key of [...mandatory, ...resourceNameKeys, 'AWS_REGION', 'NODE_ENV', 'AUTH_MODE']) {
      expect(env, key).toHaveProperty(key);
    }
    const config = loadConfig(env);
    expect(config.NODE_ENV).toBe('production');
    expect(config.AUTH_MODE).toBe('api-key');
    expect(config.REDIS_URL).toMatch(/^rediss:\/\//); // ElastiCache has in-transit encryption on
  });

  it('k8s keeps the secrets out of the ConfigMap', () => {
    const configMap = configMapEnv();
    for (const key of ['API_KEYS', 'REDIS_URL']) {
      expect(configMap).not.toHaveProperty(key);
      expect(secretEnv).toHaveProperty(key);
    }
    expect(Object.keys(secretEnv).sort()).toEqual(['API_KEYS', 'REDIS_URL']);
  });
});

describe('resource names', () => {
  it('compose uses the config defaults, which the bootstrap creates', () => {
    const env = composeEnv('bootstrap');
    for (const key of resourceNameKeys) expect(env[key], key).toBe(defaultOf(key));
    expect(env.CONSUMER_MAX_RECEIVES).toBe(defaultOf('CONSUMER_MAX_RECEIVES'));
  });

  it('k8s/aws.env.example is exactly what `terraform output k8s_env` prints with the defaults', () => {
    const printed = tfNames.template(tf.output.k8s_env.value);
    expect(typeof printed).toBe('string');
    expect(parseEnvFile(printed as string)).toEqual(parseEnvFile(readText('k8s/aws.env.example')));
    expect(Object.keys(parseEnvFile(printed as string)).sort()).toEqual(
      [...resourceNameKeys, 'AWS_REGION', 'CONSUMER_MAX_RECEIVES'].sort(),
    );
  });

  it('AWS names are the local names with the terraform prefix', () => {
    const aws = parseEnvFile(readText('k8s/aws.env.example'));
    const region = String(tfNames.variable('region'));
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
    const receives = String(tfNames.variable('consumer_max_receives'));
    expect(composeEnv('consumer').CONSUMER_MAX_RECEIVES).toBe(receives);
    expect(configMapEnv().CONSUMER_MAX_RECEIVES).toBe(receives);
    expect(defaultOf('CONSUMER_MAX_RECEIVES')).toBe(receives);
  });
});

describe('ports, identities, routes and entry points', () => {
  it('the Service nodePort is the port the load balancer target group forwards to', () => {
    const service = manifests.find(({ doc }) => doc.kind === 'Service')?.doc;
    const nodePort = service.spec.ports[0].nodePort;
    expect(tfNames.template(resourceOf(tf, 'aws_lb_target_group', 'api').port)).toBe(nodePort);
    expect(tfNames.variable('node_port')).toBe(nodePort);
  });

  it('Pod Identity binds the namespace and ServiceAccount the manifests use', () => {
    const association = resourceOf(tf, 'aws_eks_pod_identity_association', 'app');
    const namespace = manifests.find(({ doc }) => doc.kind === 'Namespace')?.doc.metadata.name;
    const account = manifests.find(({ doc }) => doc.kind === 'ServiceAccount')?.doc.metadata.name;
    expect(tfNames.template(association.namespace)).toBe(namespace);
    expect(tfNames.template(association.service_account)).toBe(account);
    for (const d of deployments) expect(d.spec.template.spec.serviceAccountName).toBe(account);
  });

  it('every probed or health-checked path is a route that src/ defines', () => {
    const sources = listTs(join(root, 'src')).map((file) => readFileSync(file, 'utf8'));
    const defined = (path: string) => sources.some((source) => source.includes(`'${path}'`) || source.includes(`"${path}"`));
    const paths = new Set<string>([
      blockOf(resourceOf(tf, 'aws_lb_target_group', 'api'), 'health_check').path,
      ...deployments.flatMap((d) =>
        d.spec.template.spec.containers.flatMap((c: Json) =>
          ['startupProbe', 'readinessProbe', 'livenessProbe'].map((probe) => c[probe].httpGet.path),
        ),
      ),
    ]);
    expect(paths.size).toBeGreaterThan(0);
    for (const path of paths) {
      expect([...routes.api, ...routes.worker]).toContain(path);
      expect(defined(path), `${path} in src/`).toBe(true);
    }
  });

  it('every command runs an entry point that src/ compiles, needing production dependencies only', () => {
    const commands = [
      ...deployments.map((d) => d.spec.template.spec.containers[0].command),
      ...Object.values(compose.services as Record<string, Json>).flatMap((s) => (s.command ? [s.command] : [])),
    ];
    const used = new Set(commands.map((command: string[]) => command[1]));
    expect([...used].sort()).toEqual(Object.values(entryPoints).sort());
    const production = new Set(Object.keys(JSON.parse(readText('package.json')).dependencies));
    for (const entry of used) {
      const source = entry?.replace(/^dist\/(.*)\.js$/, 'src/$1.ts') ?? '';
      expect(exists(source), source).toBe(true);
      // The image has `npm ci --omit=dev`: a devDependency reached from here would crash it.
      for (const pkg of packagesImportedFrom(join(root, source))) expect(production, `${source} → ${pkg}`).toContain(pkg);
    }
  });
});

/** Packages that a module and everything it imports at run time (not `import type`) load. */
function packagesImportedFrom(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const specifiers = source.matchAll(
      /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm,
    );
    for (const match of specifiers) {
      const specifier = match[1] ?? match[2] ?? '';
      if (specifier.startsWith('.')) visit(join(dirname(file), specifier));
      else if (!specifier.startsWith('node:')) {
        const parts = specifier.split('/');
        packages.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier));
      }
    }
  };
  visit(entry);
  return packages;
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}
