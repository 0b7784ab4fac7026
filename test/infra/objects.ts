// Every object a configuration would create, by address, its arguments
// evaluated (plan.ts): the managed resources and data sources of the root
// and of each instance of this repository's modules, and the arguments
// given to each registry module call (what the objects inside it follow
// from). moved.test.ts compares the single-region deployments with
// test/infra/fixtures/single-region-objects.json, what the configuration
// created before its regional resources moved into modules/region (commit
// cd70ff0), made by this file (again if it changes how it renders objects):
//
//   git worktree add /tmp/before cd70ff0
//   node test/infra/objects.ts /tmp/before/terraform > test/infra/fixtures/single-region-objects.json
import { join } from 'node:path';
import { Unknown } from './hcl-eval.ts';
import { exampleAccountId, type Json } from './helpers.ts';
import { Plan, loadBlocks } from './plan.ts';

/** The variables a single-region deployment must set (docs/deploy.md's terraform.tfvars). */
const required = {
  admin_cidrs: ['203.0.113.7/32'],
  certificate_arn: `arn:aws:acm:eu-west-1:${exampleAccountId}:certificate/0f0e`,
};

/**
 * Two single-region deployments: the defaults, and every optional object asked for.
 * The defaults are those of the snapshot: access logs were opt-in until issue 20,
 * and the WAF came with it (a deployment made then gains the log bucket and
 * the web ACL on upgrade, which moves nothing); the nodes were t3.large, 2 to 6,
 * until issue 20 sized them from docs/capacity.md (new instance types replace
 * the node group: docs/deploy.md); and CloudFront came with issue 21 (new
 * objects, and a statement more in the API's policy and the keys' and
 * bucket's: changes in place, no move).
 */
const snapshotNodes = { node_instance_types: ['t3.large'], node_count: { min: 2, desired: 3, max: 6 } };
export const singleRegionDeployments = {
  defaults: { ...required, ...snapshotNodes, alb_access_logs: false, cdn: false, waf: false },
  'every option': { ...required, ...snapshotNodes, plain_http: 'redirect', alb_access_logs: true, vpc_flow_logs: true, cdn: false, waf: false },
} as const;

/** Plain JSON, what only apply knows as "<address>"; depends_on only orders, it configures nothing. */
function plain(value: unknown): Json {
  if (value instanceof Unknown) return String(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'depends_on').map(([key, item]) => [key, plain(item)]));
  }
  return value;
}

function objectsOf(plan: Plan): Record<string, Json> {
  const objects: Record<string, Json> = {};
  for (const kind of ['resource', 'data'] as const) {
    for (const type of Object.keys(plan.blocks[kind])) {
      for (const { address, config } of plan.instances(type, kind)) objects[address] = plain(config);
    }
  }
  for (const [name, block] of Object.entries(plan.blocks.module)) {
    if (!String(block.source).startsWith('./')) {
      for (const { key, args } of plan.moduleArguments(name)) objects[`${plan.prefix}module.${name}${key === undefined ? '' : `[${JSON.stringify(key)}]`}`] = plain(args);
      continue;
    }
    for (const { plan: child } of plan.moduleInstances(name)) Object.assign(objects, objectsOf(child));
  }
  return objects;
}

/** The objects of each single-region deployment of a terraform directory and its modules. */
export async function singleRegionObjects(dir: string): Promise<Record<keyof typeof singleRegionDeployments, Record<string, Json>>> {
  const root = await loadBlocks(dir);
  const modules = { './modules/region': await loadBlocks(join(dir, 'modules', 'region')) };
  const [defaults, options] = Object.values(singleRegionDeployments).map((values) => objectsOf(new Plan(root, values, modules)));
  return { defaults: defaults!, 'every option': options! };
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node test/infra/objects.ts <terraform directory>');
  process.stdout.write(`${JSON.stringify(await singleRegionObjects(dir), null, 2)}\n`);
}
