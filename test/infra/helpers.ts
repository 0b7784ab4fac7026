// Shared loaders for the offline checks of the deployment artefacts: they read
// the files exactly as docker, kubectl (kustomize) and terraform would, so the
// tests assert on what would really be deployed.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ConfigSchema } from '../../src/config.ts';

export const root = resolve(import.meta.dirname, '..', '..');
export const k8sDir = join(root, 'k8s');
export const terraformDir = join(root, 'terraform');

export const readText = (relativePath: string): string => readFileSync(join(root, relativePath), 'utf8');
export const exists = (relativePath: string): boolean => existsSync(join(root, relativePath));

/** Parsed HCL/YAML is untyped JSON; the tests assert on its shape. */
export type Json = any;

/** The default src/config.ts gives a variable, as the environment would spell it. */
export function defaultOf(key: keyof typeof ConfigSchema.properties): string {
  const value = (ConfigSchema.properties[key] as { default?: unknown }).default;
  if (value === undefined) throw new Error(`${key} has no default`);
  return String(value);
}

// ---------------------------------------------------------------- routes

/** The routes the contract and src/ define, by the process that serves them. */
export const routes = {
  api: ['/health', '/health/live', '/health/ready', '/metrics', '/openapi.json'],
  worker: ['/health/live', '/health/ready', '/metrics'],
} as const;

/** Entry points: `node dist/processes/<name>.js` runs what `src/processes/<name>.ts` compiles to. */
export const entryPoints = {
  api: 'dist/processes/api.js',
  relay: 'dist/processes/relay.js',
  consumer: 'dist/processes/order-consumer.js',
  lifecycle: 'dist/processes/content-sweeper.js',
  bootstrap: 'dist/processes/bootstrap.js',
} as const;

/** Scripts the images run besides the processes: the HEALTHCHECK, and the emulators' stack. */
export const tools = {
  healthcheck: 'dist/processes/healthcheck.js',
  emulators: 'dist/local/stack.js',
} as const;

/** The source file a `dist/….js` command runs. */
export const sourceOf = (entry: string): string => entry.replace(/^dist\/(.*)\.js$/, 'src/$1.ts');

/** The AWS SDK's own variables: allowed in compose (LocalStack), not config keys. */
export const awsSdkVariables = new Set([
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_EC2_METADATA_DISABLED',
]);

/** The configuration keys that name a table, bucket, topic or queue. */
export const resourceNameKeys = [
  'DOCUMENTS_TABLE',
  'IDEMPOTENCY_TABLE',
  'ORDERS_TABLE',
  'CONSUMER_TABLE',
  'DOCUMENTS_BUCKET',
  'ORDER_EVENTS_TOPIC_ARN',
  'ORDER_EVENTS_QUEUE',
  'ORDER_EVENTS_DLQ',
  'DOCUMENT_CHANGES_TOPIC_ARN',
] as const;

// ---------------------------------------------------------------- source

/**
 * What an entry point loads at run time: every module of src/ it reaches
 * through imports that are not `import type` (relative to the root), and the
 * packages they import.
 */
export function runtimeGraph(entrySource: string): { files: string[]; packages: Set<string> } {
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
  visit(join(root, entrySource));
  return { files: [...seen].map((file) => relative(root, file)).sort(), packages };
}

/** Every module of a directory of src/, tests excluded. */
export function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listTs(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

// ---------------------------------------------------------------- env files

/** A dotenv file as kustomize's configMapGenerator reads it: KEY=VALUE, # comments. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not KEY=VALUE: ${line}`);
    const key = line.slice(0, eq);
    if (key in env) throw new Error(`duplicate key ${key}`);
    env[key] = line.slice(eq + 1);
  }
  return env;
}

// ---------------------------------------------------------------- YAML

export const readYaml = (relativePath: string): Json => parseYaml(readText(relativePath), { merge: true });

/** Both compose files: LocalStack from Docker Hub, and the project's own emulators. */
export const composeFiles = ['docker-compose.yml', 'docker-compose.emulators.yml'] as const;

/** A compose file as compose reads it with no variable set: `${VAR:-default}` is its default. */
export const readCompose = (relativePath: string): Json =>
  parseYaml(interpolateDefaults(readText(relativePath)), { merge: true });

export function interpolateDefaults(text: string): string {
  return text.replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_match, _name: string, fallback: string) => fallback);
}

/** Every document of a multi-document YAML file, failing on syntax errors. */
/**
 * The components of the service: one per Deployment of k8s/, named by its
 * app.kubernetes.io/component label. Adding a Deployment adds a component
 * everywhere the tests iterate over them (ServiceAccounts, IAM, policies).
 */
export function components(): string[] {
  return k8sManifests()
    .filter(({ doc }) => doc.kind === 'Deployment')
    .map(({ doc }) => doc.metadata.labels['app.kubernetes.io/component'] as string)
    .sort();
}

export function readYamlDocuments(relativePath: string): Json[] {
  return parseAllDocuments(readText(relativePath)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relativePath}: ${doc.errors[0]?.message}`);
    return doc.toJS();
  });
}

export const k8sFiles = (): string[] =>
  readdirSync(k8sDir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();

export const kustomization: Json = readYaml('k8s/kustomization.yaml');

/** A generated (git-ignored) env file is checked through its committed example. */
export function envFileOrExample(file: string): string {
  const generated = readText('k8s/.gitignore').split('\n').includes(file);
  return generated ? `k8s/${file}.example` : `k8s/${file}`;
}

/** The settings the pods get from the ConfigMap kustomize generates. */
export function configMapEnv(): Record<string, string> {
  const generator = kustomization.configMapGenerator.find((g: Json) => g.name === 'docsvc-config');
  const env: Record<string, string> = {};
  for (const file of generator.envs as string[]) {
    for (const [key, value] of Object.entries(parseEnvFile(readText(envFileOrExample(file))))) {
      if (key in env) throw new Error(`${key} is set by two env files of docsvc-config`);
      env[key] = value;
    }
  }
  return env;
}

/** Every Kubernetes object of k8s/, with the file it is in. */
export const k8sManifests = (): { file: string; doc: Json }[] =>
  k8sFiles()
    .filter((file) => file !== 'kustomization.yaml')
    .flatMap((file) => readYamlDocuments(`k8s/${file}`).map((doc) => ({ file, doc })));

// ---------------------------------------------------------------- terraform

export type Terraform = {
  /** Every .tf file, parsed separately (to report which one fails). */
  files: Record<string, Json>;
  variable: Record<string, Json>;
  locals: Record<string, Json>;
  output: Record<string, Json>;
  module: Record<string, Json>;
  resource: Record<string, Record<string, Json>>;
  data: Record<string, Record<string, Json>>;
  terraform: Json[];
};

const terraformCache = new Map<string, Promise<Terraform>>();

/** All of terraform/*.tf (or of a module's folder under terraform/), parsed with hcl2json and merged like terraform does. */
export function loadTerraform(folder = 'terraform'): Promise<Terraform> {
  const cached = terraformCache.get(folder);
  if (cached) return cached;
  const loading = (async () => {
    const names = readdirSync(join(root, folder)).filter((name) => name.endsWith('.tf')).sort();
    const files: Record<string, Json> = {};
    for (const name of names) files[name] = await parseHcl(name, readText(`${folder}/${name}`));
    const tf: Terraform = { files, variable: {}, locals: {}, output: {}, module: {}, resource: {}, data: {}, terraform: [] };
    const single = (kind: string, name: string, blocks: Json[]): Json => {
      if (blocks.length !== 1) throw new Error(`${kind} "${name}" is declared ${blocks.length} times`);
      return blocks[0];
    };
    const addNamed = (target: Record<string, Json>, kind: string, entries: Record<string, Json[]> | undefined) => {
      for (const [name, blocks] of Object.entries(entries ?? {})) {
        if (name in target) throw new Error(`${kind} "${name}" is declared twice`);
        target[name] = single(kind, name, blocks);
      }
    };
    for (const parsed of Object.values(files)) {
      addNamed(tf.variable, 'variable', parsed.variable);
      addNamed(tf.output, 'output', parsed.output);
      addNamed(tf.module, 'module', parsed.module);
      for (const block of parsed.locals ?? []) {
        for (const [key, value] of Object.entries(block)) {
          if (key in tf.locals) throw new Error(`local.${key} is declared twice`);
          tf.locals[key] = value;
        }
      }
      for (const kind of ['resource', 'data'] as const) {
        for (const [type, byName] of Object.entries((parsed[kind] ?? {}) as Record<string, Record<string, Json[]>>)) {
          tf[kind][type] ??= {};
          addNamed(tf[kind][type], `${kind} ${type}`, byName);
        }
      }
      tf.terraform.push(...(parsed.terraform ?? []));
    }
    return tf;
  })();
  terraformCache.set(folder, loading);
  return loading;
}

/** The module every region of the service is an instance of (terraform/regions.tf). */
export const regionModule = 'terraform/modules/region';

export function resourceOf(tf: Terraform, type: string, name: string): Json {
  const block = tf.resource[type]?.[name];
  if (block === undefined) throw new Error(`resource ${type}.${name} is not declared`);
  return block;
}

export function dataOf(tf: Terraform, type: string, name: string): Json {
  const block = tf.data[type]?.[name];
  if (block === undefined) throw new Error(`data ${type}.${name} is not declared`);
  return block;
}

/** The one nested block of a kind (hcl2json gives blocks as arrays). */
export function blockOf(parent: Json, kind: string): Json {
  const blocks = parent?.[kind];
  if (!Array.isArray(blocks) || blocks.length !== 1) throw new Error(`expected one "${kind}" block`);
  return blocks[0];
}

/** The account id the committed examples use in place of the real one. */
export const exampleAccountId = '123456789012';
