// The deployments test/infra expands offline (plan.ts): the default one
// region, and two regions, each with the variables docs/deploy.md tells an
// operator to set. Every region of them is checked for the same defaults
// (terraform.test.ts, iam.test.ts, load-balancer.test.ts).
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { exampleAccountId, terraformDir } from './helpers.ts';
import { Plan, loadBlocks } from './plan.ts';

export const rootBlocks = await loadBlocks(terraformDir);
export const regionBlocks = await loadBlocks(join(terraformDir, 'modules', 'region'));
const modules = { './modules/region': regionBlocks };

export const PRIMARY = 'eu-west-1';
export const SECONDARY = 'us-east-1';
export const DNS = { zone_id: 'Z0123456789ABCDEFGHIJ', name: 'api.example.com' };
export const ADMIN_CIDRS = ['203.0.113.7/32'];
/** An ACM certificate of the API's name, issued in a region. */
export const certificate = (region: string) => `arn:aws:acm:${region}:${exampleAccountId}:certificate/0f0e-${region}`;

/** The public key make cdn-key writes into terraform/cdn.auto.tfvars (a real one: the format is all terraform checks). */
export const CDN_PUBLIC_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();

/** A deployment of terraform/ with these variables (besides the ones every deployment sets). */
export const deploy = (values: Record<string, unknown> = {}) =>
  new Plan(rootBlocks, { admin_cidrs: ADMIN_CIDRS, certificate_arn: certificate(PRIMARY), cdn_public_key_pem: CDN_PUBLIC_KEY, ...values }, modules);

export const twoRegionValues = {
  region: PRIMARY,
  regions: [PRIMARY, SECONDARY],
  dns: DNS,
  certificate_arns: { [SECONDARY]: certificate(SECONDARY) },
};

export const one = deploy();
export const two = deploy(twoRegionValues);

/** Each region's instance of modules/region in a deployment, by region. */
export function regionsOf(plan: Plan): Record<string, Plan> {
  return Object.fromEntries(plan.moduleInstances('region').map(({ plan: region }) => [String(region.variable('region')), region]));
}

/** A region of a deployment, and the same region of that deployment with other variables. */
export type Region = { plan: Plan; region: string; variant: (values: Record<string, unknown>) => Plan };
const regionOf = (values: Record<string, unknown>, region: string): Region => ({
  plan: regionsOf(deploy(values))[region]!,
  region,
  variant: (more) => regionsOf(deploy({ ...values, ...more }))[region]!,
});

/** Every region of both deployments, named for describe.each. */
export const everyRegion: [string, Region][] = [
  [`one region (${PRIMARY})`, regionOf({}, PRIMARY)],
  [`two regions: the primary (${PRIMARY})`, regionOf(twoRegionValues, PRIMARY)],
  [`two regions: the second (${SECONDARY})`, regionOf(twoRegionValues, SECONDARY)],
];
