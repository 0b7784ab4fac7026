// Where the service's pods may open connections (k8s/networkpolicies.yaml):
// egress is denied by default, and each workload, those of k8s/ and the
// multi-region invalidation worker, may reach the cluster DNS, the Pod
// Identity agent, HTTPS outside the VPC (AWS's public endpoints, the
// gateway endpoints' addresses), and Redis in the VPC only if its code uses
// Redis (derived from its entry point's imports): nothing else.
import { describe, expect, it } from 'vitest';
import { type Json, configMapEnv, k8sManifests, parseEnvFile, readText, readYamlDocuments, runtimeGraph, sourceOf } from './helpers.ts';
import { everyRegion, rootBlocks } from './deployments.ts';
import { Unknown } from './hcl-eval.ts';

const policies = k8sManifests().filter(({ doc }) => doc.kind === 'NetworkPolicy').map(({ doc }) => doc);
const workloads = [...k8sManifests().map(({ doc }) => doc), ...readYamlDocuments('k8s/components/multi-region/invalidations.yaml')]
  .filter((doc) => doc.kind === 'Deployment')
  .map((doc) => {
    const labels: Record<string, string> = doc.spec.template.metadata.labels;
    const [node, entry] = doc.spec.template.spec.containers[0].command as string[];
    if (node !== 'node' || !entry) throw new Error(`${doc.metadata.name}: not node <entry point>`);
    return { component: labels['app.kubernetes.io/component']!, labels, usesRedis: runtimeGraph(sourceOf(entry)).packages.has('ioredis') };
  });
const vpcCidr = String(rootBlocks.variable.vpc_cidr.default);
const redisPort = Number(new URL(parseEnvFile(readText('k8s/aws.env.example')).REDIS_URL!).port);

/** A label selector (matchLabels, In / NotIn) as the API server evaluates it. */
function selects(selector: Json, labels: Record<string, string>): boolean {
  const matchLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  return matchLabels && (selector.matchExpressions ?? []).every((e: Json) => {
    if (e.operator === 'In') return e.values.includes(labels[e.key]);
    if (e.operator === 'NotIn') return !e.values.includes(labels[e.key]);
    throw new Error(`operator ${e.operator} not evaluated here`);
  });
}

const toNumber = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toNumber(ip) / size) === Math.floor(toNumber(base) / size);
}

/** The egress rules that apply to a pod with these labels. */
const egressOf = (labels: Record<string, string>): Json[] =>
  policies.filter((p) => p.spec.policyTypes.includes('Egress') && selects(p.spec.podSelector, labels)).flatMap((p) => p.spec.egress ?? []);

/** Whether a pod may open a connection to an address outside the cluster's pods (ipBlock peers only). */
function reaches(labels: Record<string, string>, ip: string, port: number, protocol = 'TCP'): boolean {
  return egressOf(labels).some(
    (rule) =>
      (rule.ports ?? []).some((p: Json) => p.port === port && (p.protocol ?? 'TCP') === protocol) &&
      (rule.to ?? []).some((peer: Json) => peer.ipBlock && inCidr(ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((x: string) => inCidr(ip, x))),
  );
}

const inVpc = '10.0.40.7'; // where ElastiCache's nodes are (a private subnet)
const awsPublic = '52.94.4.10'; // an address of DynamoDB's public range
const kubeDns = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } };

describe('egress', () => {
  it('is denied by default to every pod of the namespace', () => {
    const deny = policies.filter((p) => Object.keys(p.spec.podSelector).length === 0 && p.spec.policyTypes.includes('Egress'));
    expect(deny).toHaveLength(1);
    expect(deny[0].spec.policyTypes).toEqual(['Egress']);
    expect(deny[0].spec.egress).toBeUndefined();
  });

  it('covers the workloads of k8s/ and the multi-region worker', () => {
    expect(workloads.map((w) => w.component).sort()).toEqual(['api', 'consumer', 'invalidations', 'lifecycle', 'relay']);
    expect(inCidr(inVpc, vpcCidr)).toBe(true);
    expect(redisPort).toBe(6379);
  });

  it('leaves no rule open: each names where it goes and on which ports', () => {
    for (const policy of policies) {
      for (const rule of policy.spec.egress ?? []) {
        expect(rule.to?.length, policy.metadata.name).toBeGreaterThan(0);
        expect(rule.ports?.length, policy.metadata.name).toBeGreaterThan(0);
      }
    }
  });

  it('needs no telemetry egress: config.env sends no traces (a collector would need a policy of its own)', () => {
    const env = configMapEnv();
    expect(Object.keys(env).filter((key) => key.startsWith('OTEL_EXPORTER_OTLP_') && key.endsWith('ENDPOINT'))).toEqual([]);
  });
});

describe.each(workloads)('the egress of $component', ({ labels, usesRedis }) => {
  const rules = egressOf(labels);

  it('resolves names through the cluster DNS only, over UDP and TCP', () => {
    const dns = rules.filter((rule) => rule.ports.some((p: Json) => p.port === 53));
    expect(dns).toEqual([{ to: [kubeDns], ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] }]);
    expect(reaches(labels, '8.8.8.8', 53, 'UDP')).toBe(false);
    expect(reaches(labels, inVpc, 53, 'UDP')).toBe(false);
  });

  it('gets its credentials from the Pod Identity agent, and cannot reach the instance metadata service', () => {
    expect(reaches(labels, '169.254.170.23', 80)).toBe(true);
    for (const port of [80, 443]) expect(reaches(labels, '169.254.169.254', port), `IMDS :${port}`).toBe(false);
  });

  it('reaches AWS over HTTPS outside the VPC, and nothing in plain HTTP', () => {
    expect(reaches(labels, awsPublic, 443)).toBe(true);
    expect(reaches(labels, '3.5.0.1', 443)).toBe(true); // S3, through the gateway endpoint's prefix list
    expect(reaches(labels, inVpc, 443)).toBe(false);
    expect(reaches(labels, awsPublic, 80)).toBe(false);
  });

  it(`reaches Redis in the VPC ${usesRedis ? 'because its code uses it' : 'not at all: its code does not use it'}, and on nothing else`, () => {
    expect(reaches(labels, inVpc, redisPort)).toBe(usesRedis);
    expect(reaches(labels, awsPublic, redisPort)).toBe(false);
    const redis = rules.filter((rule) => rule.ports.some((p: Json) => p.port === redisPort));
    for (const rule of redis) expect(rule.to).toEqual([{ ipBlock: { cidr: vpcCidr } }]);
  });

  it('is allowed nothing beyond DNS, the Pod Identity agent, HTTPS and (if it uses it) Redis', () => {
    const ports = rules.flatMap((rule) => rule.ports.map((p: Json) => `${p.protocol}/${p.port}`));
    expect([...new Set(ports)].sort()).toEqual(['TCP/443', 'TCP/53', 'TCP/80', 'UDP/53', ...(usesRedis ? [`TCP/${redisPort}`] : [])].sort());
    const port80 = rules.filter((rule) => rule.ports.some((p: Json) => p.port === 80));
    expect(port80).toEqual([{ to: [{ ipBlock: { cidr: '169.254.170.23/32' } }], ports: [{ port: 80, protocol: 'TCP' }] }]);
  });
});

describe.each(everyRegion)('the VPC endpoints of %s', (_name, { plan: region, region: where }) => {
  it('carry DynamoDB and S3 off the NAT gateway: free gateway endpoints on the private subnets\' route tables', () => {
    const endpoints = region.instances('aws_vpc_endpoint');
    expect(endpoints.map((e) => e.config.service_name).sort()).toEqual([`com.amazonaws.${where}.dynamodb`, `com.amazonaws.${where}.s3`]);
    for (const { config } of endpoints) {
      expect(config).toMatchObject({ region: where, vpc_endpoint_type: 'Gateway' });
      expect(config.route_table_ids).toEqual(new Unknown(`${region.prefix}module.vpc.private_route_table_ids`));
    }
  });

  it('include no interface endpoint (about $7 a month per AZ each: docs/deploy.md says why not)', () => {
    expect(region.instances('aws_vpc_endpoint').filter(({ config }) => config.vpc_endpoint_type !== 'Gateway')).toEqual([]);
  });
});
