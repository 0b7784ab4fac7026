// k8s/: every manifest validates against the Kubernetes schemas, the
// kustomization covers every file, the workloads are hardened and probed, each
// component has its own identity, and NetworkPolicies let in only what each needs.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import {
  components,
  configMapEnv,
  entryPoints,
  envFileOrExample,
  exists,
  type Json,
  k8sFiles,
  k8sManifests,
  k8sDir,
  kustomization,
  parseEnvFile,
  readText,
  readYamlDocuments,
  routes,
} from './helpers.ts';

const models: Record<string, new (data: Json) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

const manifests = k8sManifests();
const ofKind = (kind: string): Json[] => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);
const deployments = ofKind('Deployment');
const deployment = (component: string): Json => {
  const found = deployments.find((d) => d.metadata.labels['app.kubernetes.io/component'] === component);
  if (!found) throw new Error(`no Deployment for ${component}`);
  return found;
};
const appContainer = (d: Json): Json => {
  const containers: Json[] = d.spec.template.spec.containers;
  const names = containers.map((c) => c.name).join(', ');
  if (names !== 'app') throw new Error(`${d.metadata.name}: containers [${names}], expected exactly one named app`);
  return containers[0];
};
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
/** A label selector with matchLabels and In / NotIn expressions, as the API server evaluates it. */
const selects = (selector: Json, labels: Record<string, string>): boolean =>
  matches(selector.matchLabels ?? {}, labels) &&
  (selector.matchExpressions ?? []).every((e: Json) => {
    if (e.operator === 'In') return e.values.includes(labels[e.key]);
    if (e.operator === 'NotIn') return !e.values.includes(labels[e.key]);
    throw new Error(`operator ${e.operator} not evaluated here`);
  });

describe('kustomization', () => {
  it('lists every manifest file of k8s/, and only those', () => {
    const files = k8sFiles().filter((file) => file !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files);
  });

  it('puts everything in the restricted namespace it declares', () => {
    const [namespace, ...others] = ofKind('Namespace');
    expect(others).toHaveLength(0);
    expect(kustomization.namespace).toBe(namespace.metadata.name);
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const { file, doc } of manifests) {
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace ?? kustomization.namespace, file).toBe(namespace.metadata.name);
    }
  });

  it('generates its ConfigMaps from env files that exist, or are generated from a committed example', () => {
    for (const generator of kustomization.configMapGenerator) {
      for (const file of generator.envs as string[]) {
        const path = envFileOrExample(file);
        expect(exists(path), path).toBe(true);
        expect(Object.keys(parseEnvFile(readText(path))).length, path).toBeGreaterThan(0);
      }
    }
    for (const file of ['aws.env', 'image.env']) expect(readText('k8s/.gitignore').split('\n')).toContain(file);
  });

  it('sets the image of every Deployment from the local-only docsvc-image ConfigMap', () => {
    const image = kustomization.configMapGenerator.find((g: Json) => g.name === 'docsvc-image');
    expect(image.options.annotations['config.kubernetes.io/local-config']).toBe('true');
    expect(parseEnvFile(readText(envFileOrExample(image.envs[0])))).toHaveProperty('IMAGE');
    const [replacement, ...others] = kustomization.replacements;
    expect(others).toHaveLength(0);
    expect(replacement.source).toEqual({ kind: 'ConfigMap', name: 'docsvc-image', fieldPath: 'data.IMAGE' });
    expect(replacement.targets).toEqual([
      { select: { kind: 'Deployment' }, fieldPaths: ['spec.template.spec.containers.[name=app].image'] },
    ]);
    for (const d of deployments) expect(() => appContainer(d)).not.toThrow();
  });
});

describe('manifests', () => {
  it('validate against the Kubernetes schemas', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(10);
    for (const { file, doc } of manifests) {
      const Model = models[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      if (Model) expect(() => new Model(doc).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`).not.toThrow();
    }
  });

  it('validate as the ConfigMap kustomize generates', () => {
    expect(() => new ConfigMap({ metadata: { name: 'docsvc-config' }, data: configMapEnv() }).validate()).not.toThrow();
  });

  it("include one Deployment, one ServiceAccount and one PDB per component, and the API's HPA", () => {
    expect(components()).toEqual(expect.arrayContaining(['api', 'consumer', 'relay']));
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(components().map((c) => `docsvc-${c}`));
    expect(ofKind('ServiceAccount').map((sa) => sa.metadata.name).sort()).toEqual(components().map((c) => `docsvc-${c}`));
    // The ServiceAccounts get AWS permissions through Pod Identity, none in the cluster.
    expect(manifests.filter(({ doc }) => /Role(Binding)?$/.test(doc.kind))).toEqual([]);
    expect(ofKind('HorizontalPodAutoscaler')).toHaveLength(1);
    expect(ofKind('PodDisruptionBudget')).toHaveLength(components().length);
  });
});

describe('identity, user and disruption budget of every pod, the components included', () => {
  const all = readdirSync(k8sDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.ya?ml$/.test(file) && !/kustomization\.yaml$/.test(file))
    // The Cluster Autoscaler is not the service's: it calls the Kubernetes API and runs its
    // image's own user (node-autoscaling.test.ts checks it).
    .filter((file) => !file.startsWith('cluster-autoscaler/'))
    .flatMap((file) => readYamlDocuments(`k8s/${file}`).map((doc) => ({ file, doc })));
  const pods = all.filter(({ doc }) => doc?.spec?.template?.spec).map(({ file, doc }) => ({ where: `${file}: ${doc.metadata.name}`, pod: doc.spec.template.spec }));
  /** The image's user, `uid:gid`: the last USER of the Dockerfile (its last stage is the service, dockerfile.test.ts). */
  const imageUser = [...readText('Dockerfile').matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];

  it('mounts no Kubernetes API token: no container calls the API, and EKS Pod Identity projects a token of its own', () => {
    expect(pods.length).toBeGreaterThanOrEqual(components().length + 1); // the invalidation worker's too
    for (const { where, pod } of pods) expect(pod.automountServiceAccountToken, where).toBe(false);
    const accounts = all.filter(({ doc }) => doc?.kind === 'ServiceAccount');
    expect(accounts.length).toBeGreaterThanOrEqual(components().length + 1);
    for (const { file, doc } of accounts) expect(doc.automountServiceAccountToken, `${file}: ${doc.metadata.name}`).toBe(false);
  });

  it('lets a drain evict a pod that is not ready, whatever its PodDisruptionBudget', () => {
    const budgets = all.filter(({ doc }) => doc?.kind === 'PodDisruptionBudget');
    expect(budgets.length).toBeGreaterThanOrEqual(components().length + 1);
    for (const { file, doc } of budgets) expect(doc.spec.unhealthyPodEvictionPolicy, `${file}: ${doc.metadata.name}`).toBe('AlwaysAllow');
  });

  it("runs as the image's numeric user, a uid and gid ≥ 10000 that no user of the nodes has", () => {
    expect(imageUser).toMatch(/^\d+:\d+$/);
    const [uid, gid] = imageUser!.split(':').map(Number) as [number, number];
    expect(uid).toBeGreaterThanOrEqual(10_000);
    expect(gid).toBeGreaterThanOrEqual(10_000);
    for (const { where, pod } of pods) {
      expect(pod.securityContext, where).toMatchObject({ runAsNonRoot: true, runAsUser: uid, runAsGroup: gid });
      for (const container of pod.containers) {
        expect(container.securityContext?.runAsUser ?? uid, where).toBe(uid);
        expect(container.securityContext?.runAsGroup ?? gid, where).toBe(gid);
      }
    }
  });
});

describe.each(components())('the %s Deployment', (component) => {
  const d = deployment(component);
  const pod = d.spec.template.spec;
  const container = appContainer(d);
  const routesServed = component === 'api' ? routes.api : routes.worker;

  it('selects its own pods and runs its entry point as its own ServiceAccount', () => {
    expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    expect(container.command).toEqual(['node', entryPoints[component as keyof typeof entryPoints]]);
    const account = ofKind('ServiceAccount').find((sa) => sa.metadata.name === pod.serviceAccountName);
    expect(account?.metadata.labels['app.kubernetes.io/component']).toBe(component);
  });

  it('meets the Pod Security "restricted" profile, with a read-only root and an emptyDir /tmp', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.hostNetwork ?? false).toBe(false);
    const security = container.securityContext;
    expect(security.allowPrivilegeEscalation).toBe(false);
    expect(security.privileged ?? false).toBe(false);
    expect(security.capabilities).toEqual({ drop: ['ALL'] });
    expect(security.readOnlyRootFilesystem).toBe(true);
    const tmp = container.volumeMounts.find((m: Json) => m.mountPath === '/tmp');
    expect(pod.volumes.find((v: Json) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  it('requests and limits CPU and memory', () => {
    const { requests, limits } = container.resources;
    for (const resource of ['cpu', 'memory']) {
      expect(requests[resource], resource).toBeDefined();
      expect(limits[resource], resource).toBeDefined();
    }
    const mebibytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? Number.NaN);
    expect(mebibytes(requests.memory)).toBeLessThanOrEqual(mebibytes(limits.memory));
  });

  it('probes startup and liveness on /health/live and readiness on /health/ready, on a port it serves', () => {
    const ports = new Set(container.ports.map((p: Json) => p.name));
    const expected = { startupProbe: '/health/live', livenessProbe: '/health/live', readinessProbe: '/health/ready' };
    for (const [probe, path] of Object.entries(expected)) {
      const get = container[probe]?.httpGet;
      expect(get?.path, probe).toBe(path);
      expect(routesServed).toContain(get.path);
      expect(ports.has(get.port), `${probe} port ${get.port}`).toBe(true);
    }
    const port = container.ports.find((p: Json) => p.name === container.readinessProbe.httpGet.port);
    const env = configMapEnv();
    expect(String(port.containerPort)).toBe(component === 'api' ? env.PORT : env.METRICS_PORT);
  });

  it('gets its settings from the generated ConfigMap, and the API alone the Secret of API keys', () => {
    const config = { configMapRef: { name: 'docsvc-config' } };
    expect(container.envFrom).toEqual(component === 'api' ? [config, { secretRef: { name: 'docsvc-secrets' } }] : [config]);
  });

  it('is let in by exactly one NetworkPolicy besides the default deny, on the port it serves', () => {
    const labels = d.spec.template.metadata.labels;
    const allowing = ofKind('NetworkPolicy').filter((p) => selects(p.spec.podSelector, labels) && (p.spec.ingress ?? []).length > 0);
    expect(allowing, component).toHaveLength(1);
    const [rule, ...more] = allowing[0].spec.ingress;
    expect(more).toHaveLength(0);
    const portName = component === 'api' ? 'http' : 'metrics';
    const served = container.ports.find((p: Json) => p.name === portName)?.containerPort;
    expect(rule.ports).toEqual([{ port: served, protocol: 'TCP' }]);
    if (component === 'api') {
      expect(rule.from).toBeUndefined(); // the load balancer, through any node's NodePort
    } else {
      expect(rule.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    }
  });

  it('has a termination grace period longer than its preStop pause plus the app drain', () => {
    const drainSeconds = Number(configMapEnv().SHUTDOWN_TIMEOUT_MS) / 1000;
    expect(drainSeconds).toBeGreaterThan(0);
    const pause = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pause + drainSeconds);
  });

  it('spreads its replicas across zones', () => {
    const [spread] = pod.topologySpreadConstraints;
    expect(spread.topologyKey).toBe('topology.kubernetes.io/zone');
    expect(spread.maxSkew).toBe(1);
    expect(matches(spread.labelSelector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
  });

  it('is covered by a PodDisruptionBudget that leaves a replica running', () => {
    const budgets = ofKind('PodDisruptionBudget').filter((p) =>
      matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels),
    );
    expect(budgets).toHaveLength(1);
    const minReplicas = component === 'api' ? ofKind('HorizontalPodAutoscaler')[0].spec.minReplicas : d.spec.replicas;
    expect(budgets[0].spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(budgets[0].spec.minAvailable).toBeLessThan(minReplicas);
    // A pod that is not ready (crash-looping, stalled) must not block a node's drain.
    expect(budgets[0].spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
  });
});

describe('NetworkPolicies', () => {
  it('deny every ingress in the namespace that no other policy allows', () => {
    // Egress has a default deny of its own (test/infra/egress.test.ts).
    const denyAll = ofKind('NetworkPolicy').filter((p) => Object.keys(p.spec.podSelector).length === 0 && p.spec.policyTypes.includes('Ingress'));
    expect(denyAll).toHaveLength(1);
    expect(denyAll[0].spec.policyTypes).toEqual(['Ingress']);
    expect(denyAll[0].spec.ingress).toBeUndefined();
  });

  it('let only the API be reached from outside its namespace', () => {
    for (const policy of ofKind('NetworkPolicy')) {
      for (const rule of policy.spec.ingress ?? []) {
        const open = rule.from === undefined;
        if (open) expect(selects(policy.spec.podSelector, deployment('api').spec.template.metadata.labels)).toBe(true);
        for (const c of components().filter((name) => name !== 'api')) {
          if (open) expect(selects(policy.spec.podSelector, deployment(c).spec.template.metadata.labels), c).toBe(false);
        }
      }
    }
  });
});

describe('the API', () => {
  const api = deployment('api');
  const container = appContainer(api);

  it('pauses in preStop so endpoints and the load balancer stop sending first', () => {
    expect(container.lifecycle.preStop.sleep.seconds).toBeGreaterThanOrEqual(3);
  });

  it('is scaled by an autoscaling/v2 HPA from at least two replicas, which the Deployment leaves alone', () => {
    const [hpa] = ofKind('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: api.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(api.spec.replicas).toBeUndefined();
  });

  it('is exposed by a NodePort Service with a fixed nodePort on its http port', () => {
    const [service, ...others] = ofKind('Service');
    expect(others).toHaveLength(0);
    expect(service.spec.type).toBe('NodePort');
    expect(matches(service.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    const [port] = service.spec.ports;
    expect(port.nodePort).toBeGreaterThanOrEqual(30000);
    expect(port.nodePort).toBeLessThanOrEqual(32767);
    expect(container.ports.map((p: Json) => p.name)).toContain(port.targetPort);
  });
});
