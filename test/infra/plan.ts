// What terraform would create, expanded offline for given variables: every
// resource, data source and module instance with its key, and its arguments
// evaluated (hcl-eval.ts). Enough to check a configuration with two regions
// without terraform or an AWS account.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { Unknown, evaluate, type Scope } from './hcl-eval.ts';
import { exampleAccountId, type Json } from './helpers.ts';

export type Instance = { address: string; key: string | number | undefined; config: Json };

type Blocks = {
  variable: Record<string, Json>;
  locals: Record<string, Json>;
  resource: Record<string, Record<string, Json>>;
  data: Record<string, Record<string, Json>>;
  module: Record<string, Json>;
  output: Record<string, Json>;
};

/** Every .tf file of a directory, merged like terraform does (one block per address). */
export async function loadBlocks(dir: string): Promise<Blocks> {
  const blocks: Blocks = { variable: {}, locals: {}, resource: {}, data: {}, module: {}, output: {} };
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.tf')).sort()) {
    const parsed = await parseHcl(name, readFileSync(join(dir, name), 'utf8'));
    for (const kind of ['variable', 'module', 'output'] as const) {
      for (const [key, [block]] of Object.entries((parsed[kind] ?? {}) as Record<string, Json[]>)) blocks[kind][key] = block;
    }
    for (const local of parsed.locals ?? []) Object.assign(blocks.locals, local);
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

export class Plan {
  readonly blocks: Blocks;
  private readonly vars: Record<string, unknown>;
  private readonly prefix: string;
  private readonly modules: Record<string, Blocks>;
  readonly local: Record<string, unknown>;

  /**
   * @param blocks the configuration (loadBlocks)
   * @param values variables set (the others take their defaults)
   * @param modules the configuration of each local module, by its source
   */
  constructor(blocks: Blocks, values: Record<string, unknown>, modules: Record<string, Blocks> = {}, prefix = '') {
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
    this.local = lazy(Object.keys(blocks.locals), (name) => evaluate(blocks.locals[name], this.scope()));
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

  /** `type.name` of a resource or data source: its instances, attributes evaluated when read. */
  private references(kind: 'resource' | 'data', type: string): Record<string, unknown> {
    const byName = this.blocks[kind][type] ?? {};
    return lazy(Object.keys(byName), (name) => {
      const block = byName[name];
      const { keys, values } = this.keysOf(block);
      const address = `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}`;
      const instance = (key: string | number | undefined) =>
        lazy(
          // Arguments, not nested blocks (which hcl2json gives as lists of objects).
          Object.keys(block).filter((attribute) => !(Array.isArray(block[attribute]) && block[attribute].every((item: unknown) => typeof item === 'object'))),
          (attribute) => evaluate(block[attribute], this.scope(this.instanceScope(key, values.get(key)))),
          (attribute) =>
            type === 'aws_caller_identity' && attribute === 'account_id'
              ? exampleAccountId
              : new Unknown(`${address}${key === undefined ? '' : `[${JSON.stringify(key)}]`}.${attribute}`),
        );
      if (block.count !== undefined) return keys.map(instance);
      if (block.for_each !== undefined) return Object.fromEntries(keys.map((key) => [key, instance(key)]));
      return instance(undefined);
    });
  }

  private moduleReference(name: string): unknown {
    const block = this.blocks.module[name];
    if (!String(block.source).startsWith('./')) return new Unknown(`${this.prefix}module.${name}`);
    const { keys } = this.keysOf(block);
    const instance = (key: string | number | undefined) => new Unknown(`${this.prefix}module.${name}${key === undefined ? '' : `[${JSON.stringify(key)}]`}`);
    return block.for_each !== undefined ? Object.fromEntries(keys.map((key) => [key, instance(key)])) : instance(undefined);
  }

  /** Every instance of a resource (or data source) type, its arguments evaluated. */
  instances(type: string, kind: 'resource' | 'data' = 'resource'): Instance[] {
    return Object.entries(this.blocks[kind][type] ?? {}).flatMap(([name, block]) => {
      const { keys, values } = this.keysOf(block);
      return keys.map((key) => ({
        address: `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}${key === undefined ? '' : `[${JSON.stringify(key)}]`}`,
        key,
        config: evaluate(
          Object.fromEntries(Object.entries(block).filter(([attribute]) => attribute !== 'for_each' && attribute !== 'count' && attribute !== 'lifecycle')),
          this.scope(this.instanceScope(key, values.get(key))),
        ),
      }));
    });
  }

  /** One instance, by type, name and key. */
  instance(type: string, name: string, key?: string | number, kind: 'resource' | 'data' = 'resource'): Json {
    const address = `${this.prefix}${kind === 'data' ? 'data.' : ''}${type}.${name}${key === undefined ? '' : `[${JSON.stringify(key)}]`}`;
    const found = this.instances(type, kind).find((instance) => instance.address === address);
    if (!found) throw new Error(`${address} would not be created`);
    return found.config;
  }

  /** The plan of each instance of a local module, with the arguments this configuration passes it. */
  moduleInstances(name: string): { key: string | number | undefined; plan: Plan }[] {
    const block = this.blocks.module[name];
    const blocks = this.modules[block.source];
    if (!blocks) throw new Error(`module ${name}: no configuration loaded for ${block.source}`);
    const { keys, values } = this.keysOf(block);
    return keys.map((key) => {
      const args = Object.fromEntries(
        Object.entries(block)
          .filter(([argument]) => !['source', 'version', 'for_each', 'count', 'depends_on', 'providers'].includes(argument))
          .map(([argument, value]) => [argument, evaluate(value, this.scope(this.instanceScope(key, values.get(key))))]),
      );
      return { key, plan: new Plan(blocks, args, this.modules, `module.${name}[${JSON.stringify(key)}].`) };
    });
  }

  output(name: string): unknown {
    return evaluate(this.blocks.output[name]?.value, this.scope());
  }
}
