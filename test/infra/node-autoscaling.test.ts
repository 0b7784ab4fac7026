// Nodes that follow the pods (issue 20): the HPA adds API pods, and the
// Cluster Autoscaler (k8s/cluster-autoscaler, its AWS role in
// terraform/modules/region/cluster-autoscaler.tf) adds the nodes they need to
// the one managed node group, which the load balancer targets. The group is
// sized from docs/capacity.md, read here rather than copied, so a new capacity
// model that needs more nodes fails this test until the default follows.
import { describe, expect, it } from 'vitest';
import { Unknown } from './hcl-eval.ts';
import { type Json, readText, readYaml, readYamlDocuments, root } from './helpers.ts';
import { deploy, everyRegion } from './deployments.ts';
import { execFileSync } from 'node:child_process';

const dir = 'k8s/cluster-autoscaler';
const kustomization: Json = readYaml(`${dir}/kustomization.yaml`);
const manifests: Json[] = readYamlDocuments(`${dir}/cluster-autoscaler.yaml`);
const ofKind = (kind: string): Json[] => manifests.filter((doc) => doc.kind === kind);
const autoscaler: Json = ofKind('Deployment')[0];
const container: Json = autoscaler?.spec.template.spec.containers[0];
const address = (value: unknown) => (value instanceof Unknown ? value.address : value);

/** docs/capacity.md's "Nodes" row at the targets: how many, of which instance type, pods on each. */
function capacityNodes(): { count: number; type: string; podsPerNode: number } {
  const row = /^\| Nodes \| \*\*([\d,]+)\*\* × ([a-z0-9]+\.[a-z0-9]+) \((\d+) pods each\)/m.exec(readText('docs/capacity.md'));
  if (!row) throw new Error('docs/capacity.md has no "Nodes" row of the form **N** × type (P pods each)');
  return { count: Number(row[1]!.replace(/,/g, '')), type: row[2]!, podsPerNode: Number(row[3]) };
}

/** The API Deployment's rollout surge, as a fraction: a rollout at the targets runs that many more pods. */
function apiSurge(): number {
  const api = readYamlDocuments('k8s/api.yaml').find((doc) => doc.kind === 'Deployment');
  const surge = String(api.spec.strategy.rollingUpdate.maxSurge);
  if (!surge.endsWith('%')) throw new Error(`maxSurge ${surge} is not a percentage`);
  return Number(surge.slice(0, -1)) / 100;
}

/** The architectures `make ecr-push` builds the image for (its ARCHES, handed to scripts/ecr-push.sh). */
function imageArchitectures(): string[] {
  const recipe = execFileSync('make', ['-n', 'ecr-push', 'CONTAINER_RUNTIME=docker', 'IMAGE_TAG=0123456789ab'], { cwd: root, encoding: 'utf8' });
  const arches = /ARCHES="([^"]*)" scripts\/ecr-push\.sh/.exec(recipe)?.[1];
  if (!arches) throw new Error('make ecr-push names no architectures');
  return arches.split(/\s+/).filter(Boolean);
}

const amiArchitecture: Record<string, string> = { AL2023_ARM_64_STANDARD: 'arm64', AL2023_x86_64_STANDARD: 'amd64' };

describe.each(everyRegion)('the node group, %s', (_name, { plan: region, variant }) => {
  const eks: Json = region.moduleArguments('eks')[0]!.args;
  const groups = eks.eks_managed_node_groups as Record<string, Json>;
  const group: Json = groups.default;

  it("is of docs/capacity.md's instance type, and can grow to its nodes at the targets plus a rollout's surge", () => {
    const { count, type } = capacityNodes();
    expect(group.instance_types).toContain(type);
    // The nodes at the targets × (1 + 25%): a rollout at the targets surges 25% more API pods.
    expect(group.max_size).toBeGreaterThanOrEqual(Math.ceil(count * (1 + apiSurge())));
    expect(group.min_size).toBeGreaterThanOrEqual(1);
    expect(group.min_size).toBeLessThanOrEqual(group.desired_size);
    expect(group.desired_size).toBeLessThanOrEqual(group.max_size);
  });

  it('is the only group, so every node the autoscaler adds is a target of the load balancer', () => {
    expect(Object.keys(groups)).toEqual(['default']);
    expect(address(region.instance('aws_autoscaling_attachment', 'api').autoscaling_group_name)).toBe(
      `${region.prefix}module.eks.eks_managed_node_groups["default"].node_group_autoscaling_group_names[0]`,
    );
  });

  it('runs the AMI of its instance types\' architecture, one the image is built for', () => {
    expect(group.ami_type).toBe('AL2023_ARM_64_STANDARD'); // Graviton, as docs/capacity.md plans
    expect(imageArchitectures()).toContain(amiArchitecture[group.ami_type]);
    const x86: Json = variant({ node_instance_types: ['c7i.2xlarge', 'm7i.2xlarge'] }).moduleArguments('eks')[0]!.args;
    expect(x86.eks_managed_node_groups.default.ami_type).toBe('AL2023_x86_64_STANDARD');
    for (const types of [['m7gd.2xlarge'], ['x2gd.xlarge'], ['im4gn.large']]) {
      const args: Json = variant({ node_instance_types: types }).moduleArguments('eks')[0]!.args;
      expect(args.eks_managed_node_groups.default.ami_type, types[0]).toBe('AL2023_ARM_64_STANDARD');
    }
  });
});

describe('the node variables', () => {
  it('refuse a group of two architectures (one AMI serves it) and sizes out of order', () => {
    expect(deploy({ node_instance_types: ['c7g.2xlarge', 'c7i.2xlarge'] }).failedValidations()).toEqual([expect.stringMatching(/^var\.node_instance_types: /)]);
    expect(deploy({ node_count: { min: 3, desired: 2, max: 6 } }).failedValidations()).toEqual([expect.stringMatching(/^var\.node_count: /)]);
    expect(deploy({ node_count: { min: 0, desired: 0, max: 6 } }).failedValidations()).toEqual([expect.stringMatching(/^var\.node_count: /)]);
  });
});

describe.each(everyRegion)('the Cluster Autoscaler, %s', (_name, { plan: region, region: where }) => {
  const eks: Json = region.moduleArguments('eks')[0]!.args;
  const serviceAccount: Json = ofKind('ServiceAccount')[0];

  it('gets its AWS role through Pod Identity, for its ServiceAccount in its namespace of this cluster only', () => {
    expect(kustomization.namespace).toBe('kube-system');
    expect(autoscaler.spec.template.spec.serviceAccountName).toBe(serviceAccount.metadata.name);
    expect(region.instance('aws_eks_pod_identity_association', 'cluster_autoscaler')).toMatchObject({
      region: where,
      namespace: kustomization.namespace,
      service_account: serviceAccount.metadata.name,
      role_arn: new Unknown(`${region.prefix}aws_iam_role.cluster_autoscaler.arn`),
    });
    const [trust] = region.instance('aws_iam_policy_document', 'pod_identity_trust', 'cluster-autoscaler', 'data').statement;
    expect(trust.principals[0]).toEqual({ type: 'Service', identifiers: ['pods.eks.amazonaws.com'] });
    const conditions = Object.fromEntries(trust.condition.map((c: Json) => [c.variable, address(c.values[0])]));
    expect(conditions).toEqual({
      'aws:RequestTag/eks-cluster-arn': `${region.prefix}module.eks.cluster_arn`,
      'aws:RequestTag/kubernetes-namespace': kustomization.namespace,
      'aws:RequestTag/kubernetes-service-account': serviceAccount.metadata.name,
    });
  });

  it('may resize only the node groups tagged as this cluster\'s, the ones its discovery finds', () => {
    const statements: Json[] = region.instance('aws_iam_policy_document', 'cluster_autoscaler', undefined, 'data').statement;
    const scaling = statements.filter((s) => s.actions.some((a: string) => !/:(Describe|Get)/.test(a)));
    expect(scaling).toHaveLength(1);
    expect(scaling[0].actions.sort()).toEqual(['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup']);
    const tags = Object.fromEntries(scaling[0].condition.map((c: Json) => [c.variable.replace('aws:ResourceTag/', ''), c.values]));
    expect(tags).toEqual({ 'k8s.io/cluster-autoscaler/enabled': ['true'], [`k8s.io/cluster-autoscaler/${eks.name}`]: ['owned'] });
    // The same tags, with the cluster's name from cluster.env (`make k8s-config` writes the terraform output).
    const discovery = container.command.find((arg: string) => arg.startsWith('--node-group-auto-discovery='));
    expect(discovery).toBe('--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/$(CLUSTER_NAME)');
    expect(readText(`${dir}/cluster.env.example`)).toContain(`CLUSTER_NAME=${eks.name}\n`);
    expect(readText('Makefile')).toMatch(/CLUSTER_NAME=%s\\n' .*output -raw cluster_name\)" > k8s\/cluster-autoscaler\/cluster\.env/);
    // Of several regions, each cluster's own (docs/deploy.md's per-region loop), from region_clusters' cluster_name.
    const loops = [...readText('docs/deploy.md').matchAll(/^for region in .*\n((?:  .*\n)+)done$/gm)].map((m) => m[1]!);
    const loop = loops.find((body) => body.includes('region_clusters .configure_kubectl')) ?? '';
    expect(loop).toMatch(/CLUSTER_NAME=%s\\n' "\$region" "\$\(out region_clusters \.cluster_name\)" > k8s\/cluster-autoscaler\/cluster\.env/);
    expect(loop).toContain('kubectl apply --server-side -k k8s/cluster-autoscaler/');
    // Describe calls only besides, and EKS's on this cluster's node groups.
    for (const statement of statements.filter((s) => s !== scaling[0])) {
      expect(statement.actions.every((a: string) => /^(autoscaling|ec2|eks):(Describe|Get)/.test(a)), statement.sid).toBe(true);
      if (statement.actions.some((a: string) => a.startsWith('eks:'))) expect(statement.resources).toEqual([expect.stringMatching(new RegExp(`:${where}:\\d+:nodegroup/${eks.name}/\\*/\\*$`))]);
    }
  });
});

describe('the Cluster Autoscaler manifests', () => {
  it("run the autoscaler of the cluster's Kubernetes minor version, for AWS", () => {
    const kubernetes = String(deploy().variable('kubernetes_version'));
    const tag = /^registry\.k8s\.io\/autoscaling\/cluster-autoscaler:v(\d+\.\d+)\.\d+$/.exec(container.image);
    expect(tag?.[1]).toBe(kubernetes);
    expect(container.command).toContain('--cloud-provider=aws');
    // Pods cannot reach the instance metadata (one hop): the region comes from cluster.env.
    expect(container.envFrom).toEqual([{ configMapRef: { name: 'cluster-autoscaler-env' } }]);
    expect(kustomization.configMapGenerator).toEqual([{ name: 'cluster-autoscaler-env', envs: ['cluster.env'] }]);
    expect(readText(`${dir}/.gitignore`).split('\n')).toContain('cluster.env');
  });

  it('remove nodes through the eviction API (so the PodDisruptionBudgets hold), and not the node it runs on', () => {
    const rules: Json[] = ofKind('ClusterRole')[0].rules;
    expect(rules).toContainEqual({ apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] });
    expect(rules.some((rule) => rule.resources.includes('pods') && rule.verbs.includes('delete'))).toBe(false);
    expect(rules).toContainEqual(expect.objectContaining({ apiGroups: ['policy'], resources: ['poddisruptionbudgets'] }));
    expect(autoscaler.spec.template.metadata.annotations['cluster-autoscaler.kubernetes.io/safe-to-evict']).toBe('false');
    // Scale-down waits longer than the API HPA's own scale-down window: nodes go after pods.
    const hpa = readYamlDocuments('k8s/api.yaml').find((doc) => doc.kind === 'HorizontalPodAutoscaler');
    const unneeded = container.command.find((arg: string) => arg.startsWith('--scale-down-unneeded-time='));
    expect(Number(/=(\d+)m$/.exec(unneeded)?.[1]) * 60).toBeGreaterThan(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds);
  });

  it('run as a non-root, read-only container, before the service is applied', () => {
    expect(autoscaler.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const apply = /^k8s-apply:\n((?:\t.*\n)+)/m.exec(readText('Makefile'))?.[1] ?? '';
    expect(apply.indexOf('-k k8s/cluster-autoscaler/')).toBeGreaterThanOrEqual(0);
    expect(apply.indexOf('-k k8s/cluster-autoscaler/')).toBeLessThan(apply.indexOf('-k k8s/\n'));
  });
});
