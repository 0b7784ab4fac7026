// What terraform would create, expanded offline for given variables: every
// resource, data source and module instance with its key, and its arguments
// evaluated (hcl-eval.ts); the outputs of this repository's modules, the
// preconditions and the variable validations. Enough to check a
// configuration with two regions without terraform or an AWS account.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Unknown, evaluate, type Scope } from './hcl-eval.ts';
import { exampleAccountId, type Json } from './helpers.ts';

export type Instance = { address: string; key: string | number | undefined; config: Json };

export type Blocks = {
  variable: Record<string, Json>;
  locals: Record<string, Json>;
  resource: Record<string, Record<string, Json>>;
  data: Record<string, Record<string, Json>>;
  module: Record<string, Json>;
  output: Record<string, Json>;
  /** `moved` blocks, their addresses as written (`from`, `to`). */
  moved: { from: string; to: string }[];
};

/** Every .tf file of a directory, merged like terraform does (one block per address). */
export async function loadBlocks(dir: string): Promise<Blocks> {
  const blocks: Blocks = { variable: {}, locals: {}, resource: {}, data: {}, module: {}, output: {}, moved: [] };
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.tf')).sort()) {
    const parsed = await parseHcl(name, readFileSync(join(dir, name), 'utf8'));
    for (const kind of ['variable', 'module', 'output'] as const) {
      for (const [key, [block]] of Object.entries((parsed[kind] ?? {}) as Record<string, Json[]>)) blocks[kind][key] = block;
    }
    for (const local of parsed.locals ?? []) Object.assign(blocks.locals, local);
    // hcl2json gives an address as an interpolation: "${module.x.aws_y.z}".
    const address = (text: string) => /^\$\{(.*)\}$/.exec(text)?.[1] ?? text;
    for (const { from, to } of (parsed.moved ?? []) as { from: string; to: string }[]) blocks.moved.push({ from: address(from), to: address(to) });
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries((parsed[kind] ?? {}) as Record<string, Record<string, Json[]>>)) {
        blocks[kind][type] ??= {};
        for (const [name, [block]] of Object.entries(byName)) blocks[kind][type]![name] = block;
      }
    }
  }
  return blocks;
}

/** An object whose attributes are computed when read (locals, resource attributes). */
function lazy(names: string[], get: (name: string) => unknown, fallback?: (name: string) => unknown): Record<string, unknown> {
  const cache = new Map<string, unknown>();
  return new Proxy(
    {},
    {
      has: (_target, name) => typeof name === 'string' && (names.includes(name) || fallback !== undefined),
      get: (_target, name) => {
        if (typeof name !== 'string') return undefined;
        if (!cache.has(name)) cache.set(name, names.includes(name) ? get(name) : fallback?.(name));
        return cache.get(name);
      },
      ownKeys: () => names,
      getOwnPropertyDescriptor: (_target, name) => (typeof name === 'string' && names.includes(name) ? { enumerable: true, configurable: true } : undefined),
    },
  );
}

/**
 * The ARN AWS gives a resource of these types follows from its name and
 * region (the formats of the AWS Service Authorization Reference); any
 * other attribute only apply knows stays Unknown.
 */
const arnOf: Record<string, (name: (attribute: string) => unknown, region: string) => string> = {
  aws_dynamodb_table: (name, region) => `arn:aws:dynamodb:${region}:${exampleAccountId}:table/${String(name('name'))}`,
  aws_s3_bucket: (name) => `arn:aws:s3:::${String(name('bucket'))}`,
  aws_sns_topic: (name, region) => `arn:aws:sns:${region}:${exampleAccountId}:${String(name('name'))}`,
  aws_sqs_queue: (name, region) => `arn:aws:sqs:${region}:${exampleAccountId}:${String(name('name'))}`,
};

export class Plan {
  readonly blocks: Blocks;
  private readonly vars: Record<string, unknown>;
  /** The module path of this configuration's objects (`module.region["primary"].`; the root: empty). */
  readonly prefix: string;
  private readonly modules: Record<string, Blocks>;
  /** The region of the provider configuration: where a resource without a `region` argument is. */
  private readonly providerRegion: string;
  private readonly children = new Map<string, { key: string | number | undefined; plan: Plan }[]>();
  readonly local: Record<string, unknown>;

  /**
   * @param blocks the configuration (loadBlocks)
   * @param values variables set (the others take their defaults)
   * @param modules the configuration of each local module, by its source
   */
  constructor(blocks: Blocks, values: Record<string, unknown>, modules: Record<string, Blocks> = {}, prefix = '', providerRegion?: string) {
    this.blocks = blocks;
    this.modules = modules;
    this.prefix = prefix;
    this.vars = Object.fromEntries(
      Object.entries(blocks.variable).map(([name, variable]) => {
        if (name in values) return [name, values[name]];
        if (!('default' in variable)) throw new Error(`var.${name} has no default and no value`);
        return [name, variable.default];
      }),
    );
    this.providerRegion = providerRegion ?? String(this.vars.region);
    this.local = lazy(Object.keys(blocks.locals), (name) => evaluate(blocks.locals[name], this.scope()));
  }

  /** The same configuration with some variables set otherwise. */
  with(values: Record<string, unknown>): Plan {
    return new Plan(this.blocks, { ...this.vars, ...values }, this.modules, this.prefix, this.providerRegion);
  }

  /** The value a variable has in this plan (given, or its default). */
  variable(name: string): unknown {
    if (!(name in this.vars)) throw new Error(`var.${name} is not declared`);
    return this.vars[name];
  }

  scope(extra: Record<string, unknown> = {}): Scope {
    return (name) => {
      if (name in extra) return extra[name];
      if (name === 'var') return this.vars;
      if (name === 'local') return this.local;
      if (name === 'data') return lazy(Object.keys(this.blocks.data), (type) => this.references('data', type));
      if (name === 'module') return lazy(Object.keys(this.blocks.module), (module) => this.moduleReference(module));
      if (name in this.blocks.resource) return this.references('resource', name);
      throw new Error(`unknown reference ${name}`);
    };
  }

  /** The keys of a block's instances: none (one instance), count.index, or for_each's keys. */
  private keysOf(block: Json): { keys: (string | number | undefined)[]; values: Map<string | number | undefined, unknown> } {
    const values = new Map<string | number | undefined, unknown>();
    if (block.count !== undefined) {
      const count = evaluate(block.count, this.scope()) as number;
      for (let index = 0; index < count; index++) values.set(index, undefined);
    } else if (block.for_each !== undefined) {
      const each = evaluate(block.for_each, this.scope());
      if (each instanceof Unknown) values.set('(known after apply)', each);
      else if (Array.isArray(each)) for (const key of each) values.set(String(key), key);
      else for (const [key, value] of Object.entries(each as Record<string, unknown>)) values.set(key, value);
    } else values.set(undefined, undefined);
    return { keys: [...values.keys()], values };
  }

  private instanceScope(key: string | number | undefined, value: unknown): Record<string, unknown> {
    return typeof key === 'number' ? { count: { index: key } } : key === undefined ? {} : { each: { key, value } };
  }

  private static suffix(key: string | number | undefined): string {
    return key === undefined ? '' : `[${JSON.stringify(key)}]`;
  }

  /** `type.name` of a resource or data source: its instances, attributes evaluated when read. */
  private references(kind: 'resource' | 'data', type: string): Record<string, unknown> {
    const byName = this.blocks[kind][type] ?? {};
    return lazy(Object.keys(byName), (name) => {
      const block = byName[name];
      const { keys, values } = this.keysOf(block);
      const address = `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}`;
      const instance = (key: string | number | undefined) => {
        const attributes: Record<string, unknown> = lazy(
          // Arguments, not nested blocks (which hcl2json gives as lists of objects).
          Object.keys(block).filter((attribute) => !(Array.isArray(block[attribute]) && block[attribute].every((item: unknown) => typeof item === 'object'))),
          (attribute) => evaluate(block[attribute], this.scope(this.instanceScope(key, values.get(key)))),
          (attribute) => {
            if (type === 'aws_caller_identity' && attribute === 'account_id') return exampleAccountId;
            const arn = kind === 'resource' && attribute === 'arn' ? arnOf[type] : undefined;
            if (arn) return arn((name) => attributes[name], 'region' in block ? String(attributes.region) : this.providerRegion);
            return new Unknown(`${address}${Plan.suffix(key)}.${attribute}`);
          },
        );
        return attributes;
      };
      if (block.count !== undefined) return keys.map(instance);
      if (block.for_each !== undefined) return Object.fromEntries(keys.map((key) => [key, instance(key)]));
      return instance(undefined);
    });
  }

  /** A module's outputs: evaluated in its plan for a module of this repository, Unknown for a registry module. */
  private moduleReference(name: string): unknown {
    const block = this.blocks.module[name];
    if (!String(block.source).startsWith('./')) return new Unknown(`${this.prefix}module.${name}`);
    const outputsOf = (plan: Plan) => lazy(Object.keys(plan.blocks.output), (output) => plan.output(output));
    const instances = this.moduleInstances(name);
    if (block.for_each === undefined && block.count === undefined) return outputsOf(instances[0]!.plan);
    const made = instances.map(({ key, plan }) => [key, outputsOf(plan)] as const);
    return block.count === undefined ? Object.fromEntries(made) : made.map(([, outputs]) => outputs);
  }

  /** Every instance of a resource (or data source) type, its arguments evaluated. */
  instances(type: string, kind: 'resource' | 'data' = 'resource'): Instance[] {
    return Object.entries(this.blocks[kind][type] ?? {}).flatMap(([name, block]) => {
      const { keys, values } = this.keysOf(block);
      return keys.map((key) => ({
        address: `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}${Plan.suffix(key)}`,
        key,
        config: evaluate(
          Object.fromEntries(Object.entries(block).filter(([attribute]) => attribute !== 'for_each' && attribute !== 'count' && attribute !== 'lifecycle')),
          this.scope(this.instanceScope(key, values.get(key))),
        ),
      }));
    });
  }

  /** Every managed resource instance of this configuration (not of its modules), by address. */
  resources(): Instance[] {
    return Object.keys(this.blocks.resource).flatMap((type) => this.instances(type));
  }

  /** One instance, by type, name and key. */
  instance(type: string, name: string, key?: string | number, kind: 'resource' | 'data' = 'resource'): Json {
    const address = `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}${Plan.suffix(key)}`;
    const found = this.instances(type, kind).find((instance) => instance.address === address);
    if (!found) throw new Error(`${address} would not be created`);
    return found.config;
  }

  /** The error messages of the preconditions an instance fails (none: it would be planned). */
  failedPreconditions(type: string, name: string, key?: string | number): string[] {
    const block = this.blocks.resource[type]?.[name];
    if (!block) throw new Error(`${type}.${name} is not declared`);
    const { values } = this.keysOf(block);
    const scope = this.scope(this.instanceScope(key, values.get(key)));
    const checks: Json[] = (block.lifecycle ?? []).flatMap((lifecycle: Json) => lifecycle.precondition ?? []);
    return checks.filter((check) => evaluate(check.condition, scope) !== true).map((check) => String(evaluate(check.error_message, scope)));
  }

  /** The error messages of the variable validations that refuse the values given. */
  failedValidations(): string[] {
    return Object.entries(this.blocks.variable).flatMap(([name, variable]) =>
      ((variable.validation ?? []) as Json[])
        .filter((validation) => evaluate(validation.condition, this.scope()) !== true)
        .map((validation) => `var.${name}: ${String(validation.error_message)}`),
    );
  }

  /** The arguments this configuration passes to each instance of a module call (of the registry, or of this repository). */
  moduleArguments(name: string): { key: string | number | undefined; args: Record<string, unknown> }[] {
    const block = this.blocks.module[name];
    if (!block) throw new Error(`module ${name} is not declared`);
    const { keys, values } = this.keysOf(block);
    return keys.map((key) => ({
      key,
      args: Object.fromEntries(
        Object.entries(block)
          .filter(([argument]) => !['source', 'version', 'for_each', 'count', 'depends_on', 'providers'].includes(argument))
          .map(([argument, value]) => [argument, evaluate(value, this.scope(this.instanceScope(key, values.get(key))))]),
      ),
    }));
  }

  /** The plan of each instance of a local module, with the arguments this configuration passes it. */
  moduleInstances(name: string): { key: string | number | undefined; plan: Plan }[] {
    const cached = this.children.get(name);
    if (cached) return cached;
    const block = this.blocks.module[name];
    const blocks = this.modules[block.source];
    if (!blocks) throw new Error(`module ${name}: no configuration loaded for ${block.source}`);
    const made = this.moduleArguments(name).map(({ key, args }) => ({
      key,
      plan: new Plan(blocks, args, this.modules, `${this.prefix}module.${name}${Plan.suffix(key)}.`, this.providerRegion),
    }));
    this.children.set(name, made);
    return made;
  }

  output(name: string): unknown {
    return evaluate(this.blocks.output[name]?.value, this.scope());
  }
}
