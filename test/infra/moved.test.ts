// The regional resources of the primary moved from the root into
// modules/region (module.region["primary"]). A deployment made before has
// them in its state at their old addresses: terraform/moved.tf must carry
// every one of them to an object the configuration still makes, configured
// as it was, or terraform would destroy and recreate it (a new bucket, a new
// cluster, a new Redis). The "before" is a snapshot of what the default
// single-region deployment created then (objects.ts says how it was made).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Json, root, terraformDir } from './helpers.ts';
import { loadBlocks } from './plan.ts';
import { singleRegionDeployments, singleRegionObjects } from './objects.ts';

const snapshot: Record<string, Record<string, Json>> = JSON.parse(readFileSync(join(root, 'test/infra/fixtures/single-region-objects.json'), 'utf8'));
const current = await singleRegionObjects(terraformDir);
const { moved } = await loadBlocks(terraformDir);
const declared = await loadBlocks(join(terraformDir, 'modules', 'region'));
const primary = 'module.region["primary"].';
const region = 'eu-west-1'; // the default region, which the snapshot was made with
const managed = (address: string) => !/(^|\.)data\./.test(address) && !/(^|\.)module\.[a-z_]+$/.test(address.replace(/\["[^"]*"\]$/, ''));
const blockOf = (address: string) => address.replace(/\[[^\]]*\]$/, '');

/**
 * Arguments added since the snapshot, on purpose, that terraform changes in
 * place (no replacement), as dotted paths: the load balancer's deletion
 * protection, and the node group's AMI type, which for the snapshot's x86
 * nodes is the module's default (issue 20); the bucket policy's CloudFront
 * statement (issue 21), null (unset) with cdn = false as here.
 */
const addedSince: Record<string, string[]> = {
  [`${primary}aws_lb.api`]: ['enable_deletion_protection'],
  [`${primary}module.eks`]: ['eks_managed_node_groups.default.ami_type'],
  [`${primary}data.aws_iam_policy_document.documents_bucket`]: ['source_policy_documents'],
  [`data.aws_iam_policy_document.kms_key["${region}"]`]: ['source_policy_documents'],
};

/** Objects created since, on purpose: creating them moves nothing. The cluster autoscaler's identity (issue 20). */
const createdSince = ['aws_iam_role', 'aws_iam_role_policy', 'aws_eks_pod_identity_association'].map((type) => `${primary}${type}.cluster_autoscaler`);

/** Data sources made one per region since (issue 21: the keys' policies name their region's bucket); no state to move. */
const perRegionData = [{ from: 'data.aws_iam_policy_document.kms_key', to: `data.aws_iam_policy_document.kms_key["${region}"]` }];

/** A configuration without the arguments at these dotted paths. */
function without(config: Json, paths: string[]): Json {
  const copy = structuredClone(config ?? {});
  for (const path of paths) {
    const keys = path.split('.');
    const parent = keys.slice(0, -1).reduce((value: Json, key) => value?.[key], copy);
    if (parent) delete parent[keys.at(-1)!];
  }
  return copy;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A new object's arguments, but for `region` where it is the provider's (where terraform put the object without it). */
function asBefore(config: Json): Json {
  const { region: placed, ...rest } = config ?? {};
  return placed === undefined || placed === region ? rest : config;
}

describe('moved.tf: what the moved blocks name', () => {
  it('moves only what left the root, each to a block of modules/region of the same type and name', () => {
    expect(moved.length).toBeGreaterThan(30);
    const all = Object.values(current).flatMap((objects) => Object.keys(objects));
    for (const { from, to } of moved) {
      expect(to, from).toBe(`${primary}${from}`);
      expect(all.some((address) => blockOf(address) === from || address === from), `${from} is still in the root`).toBe(false);
      const [kind, name] = from.split('.') as [string, string];
      expect(kind === 'module' ? declared.module[name] : declared.resource[kind]?.[name], `${to} is not declared`).toBeDefined();
    }
  });
});

describe.each(Object.keys(singleRegionDeployments) as (keyof typeof singleRegionDeployments)[])('moved.tf: a single-region deployment made before the move, with %s', (deployment) => {
  const before = snapshot[deployment]!;
  const now = current[deployment];
  // A data source has no state: it is read again where its configuration now is.
  const dataMoves = [...new Set(Object.keys(before).filter((a) => a.startsWith('data.')).map(blockOf))]
    .filter((data) => !Object.keys(now).some((a) => blockOf(a) === data) && Object.keys(now).some((a) => blockOf(a) === `${primary}${data}`))
    .map((data) => ({ from: data, to: `${primary}${data}` }));
  const moves = [...moved, ...dataMoves, ...perRegionData];

  /** An address of the old configuration, where the moved blocks put it. */
  function carried(address: string): string {
    const move = moves.find(({ from }) => address === from || address.startsWith(`${from}[`));
    return move ? move.to + address.slice(move.from.length) : address;
  }

  /** A value of the old configuration with every reference in it carried the same way. */
  function carriedValue(value: Json): Json {
    if (typeof value === 'string') {
      return moves.reduce((text, { from, to }) => text.replace(new RegExp(`(?<![\\w."\\]])${escape(from)}(?=[.\\[])`, 'g'), to), value);
    }
    if (Array.isArray(value)) return value.map(carriedValue);
    if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, carriedValue(v)]));
    return value;
  }

  it('is the deployment the snapshot describes', () => {
    expect(singleRegionDeployments[deployment].certificate_arn).toContain(`:acm:${region}:`);
    expect(Object.keys(before).filter(managed).length).toBeGreaterThan(40);
  });

  it('keeps every object it had, and makes no other', () => {
    const kept = Object.keys(before).filter(managed).map(carried).sort();
    expect(Object.keys(now).filter(managed).filter((a) => !createdSince.includes(a)).sort()).toEqual(kept);
    // The registry modules' calls too: their objects follow from these arguments.
    expect(Object.keys(now).filter((a) => !managed(a) && !a.includes('data.')).sort()).toEqual(
      Object.keys(before).filter((a) => !managed(a) && !a.includes('data.')).map(carried).sort(),
    );
  });

  it('configures each as it was, so that terraform plans no replacement (and no change)', () => {
    for (const [address, config] of Object.entries(before)) {
      const to = carried(address);
      const { [to]: added = [] } = addedSince;
      const current = without(asBefore(now[to]), added);
      expect(now[to] === undefined ? undefined : current, address).toEqual(carriedValue(config));
    }
  });
});
