import { createHash, randomBytes } from 'node:crypto';
import { GenericContainer, type StartedTestContainer, type WaitStrategy } from 'testcontainers';
import { expect, inject } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { type Json, k8sManifests, parseEnvFile, readText } from '../infra/helpers.ts';

// The service's containers as Kubernetes runs them: every Deployment of k8s/
// is a component, started from the built image with its command and exactly
// its security context, on the host network against the local stack.

export const image = process.env.DOCSVC_IMAGE ?? 'docsvc:local';
export const emulatorsImage = process.env.DOCSVC_EMULATORS_IMAGE ?? 'docsvc-emulators:local';

export type Component = {
  /** The Deployment's app.kubernetes.io/component label: api, relay, consumer. */
  name: string;
  command: string[];
  /** The variable that sets the port its probes use: PORT (the API) or METRICS_PORT. */
  portVariable: 'PORT' | 'METRICS_PORT';
  /** runAsUser:runAsGroup of the pod. */
  user: string;
  readOnlyRootFilesystem: boolean;
  dropCapabilities: string[];
  allowPrivilegeEscalation: boolean;
  /** The emptyDir mounts: the only writable paths, as tmpfs of the same size. */
  tmpfs: Record<string, string>;
  terminationGracePeriodSeconds: number;
  preStopSeconds: number;
  /** Whether it gets the Secret (API_KEYS): the API only. */
  secretEnv: boolean;
};

const portVariables: Record<string, Component['portVariable']> = { http: 'PORT', metrics: 'METRICS_PORT' };

function componentOf(deployment: Json): Component {
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const probePort = container.readinessProbe.httpGet.port;
  const portVariable = portVariables[probePort];
  if (!portVariable) throw new Error(`${deployment.metadata.name}: no port variable for the port named ${probePort}`);
  const security = container.securityContext;
  const tmpfs: Record<string, string> = {};
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes.find((v: Json) => v.name === mount.name);
    if (!volume?.emptyDir) throw new Error(`${deployment.metadata.name}: ${mount.mountPath} is not an emptyDir`);
    const size = /^(\d+)Mi$/.exec(volume.emptyDir.sizeLimit ?? '')?.[1];
    tmpfs[mount.mountPath] = size ? `rw,nosuid,nodev,size=${size}m` : 'rw,nosuid,nodev';
  }
  return {
    name: deployment.metadata.labels['app.kubernetes.io/component'],
    command: container.command,
    portVariable,
    user: `${security.runAsUser ?? pod.securityContext.runAsUser}:${security.runAsGroup ?? pod.securityContext.runAsGroup}`,
    readOnlyRootFilesystem: security.readOnlyRootFilesystem === true,
    dropCapabilities: security.capabilities?.drop ?? [],
    allowPrivilegeEscalation: security.allowPrivilegeEscalation !== false,
    tmpfs,
    terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
    preStopSeconds: container.lifecycle?.preStop?.sleep?.seconds ?? 0,
    secretEnv: (container.envFrom ?? []).some((source: Json) => source.secretRef),
  };
}

/** One per Deployment: a new Deployment in k8s/ is a new container here. */
export const components: Component[] = k8sManifests()
  .filter(({ doc }) => doc.kind === 'Deployment')
  .map(({ doc }) => componentOf(doc));

export function component(name: string): Component {
  const found = components.find((c) => c.name === name);
  if (!found) throw new Error(`no Deployment for the component ${name} in k8s/`);
  return found;
}

/** An API key of the test's own tenant, and the API_KEYS entry (its digest) the containers get. */
export const apiKey = randomBytes(32).toString('hex');
export const tenant = 'image-test';
const apiKeys = `${tenant}:${createHash('sha256').update(apiKey).digest('hex')}`;

/**
 * The environment of a component's pod: the ConfigMap's account-independent
 * settings (k8s/config.env), the Secret's keys if its Deployment reads the
 * Secret, and the local stack in place of AWS. Listening on loopback: the
 * host network is the machine's.
 */
export function podEnvironment(c: Component, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...parseEnvFile(readText('k8s/config.env')),
    ...(c.secretEnv ? { API_KEYS: apiKeys } : {}),
    ...inject('stackEnv'),
    HOST: '127.0.0.1',
    ...extra,
  };
}

/** Ready when GET path on the host's port answers 200; fails early if the container exits. */
class ReadyOnHostPort implements WaitStrategy {
  /** When the first 200 came, and the container's own start time (State.StartedAt): time to serve, reported, never asserted. */
  readyAt: number | undefined;
  startedAt: number | undefined;
  private timeoutMs = 60_000;
  private timeoutSet = false;
  private readonly port: number;
  private readonly path: string;

  constructor(port: number, path: string) {
    this.port = port;
    this.path = path;
  }

  async waitUntilReady(container: Parameters<WaitStrategy['waitUntilReady']>[0]): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${this.port}${this.path}`, { signal: AbortSignal.timeout(2000) }).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) {
        this.readyAt = Date.now();
        this.startedAt = Date.parse((await container.inspect()).State.StartedAt);
        return;
      }
      const state = (await container.inspect()).State;
      if (!state.Running) throw new Error(`the container exited (${state.ExitCode}) before ${this.path} answered 200`);
      if (Date.now() > deadline) throw new Error(`${this.path} on :${this.port} did not answer 200 within ${this.timeoutMs} ms (last: ${status})`);
      // 50 ms between polls: the resolution of the time-to-serve figure.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  withStartupTimeout(startupTimeoutMs: number): this {
    this.timeoutMs = startupTimeoutMs;
    this.timeoutSet = true;
    return this;
  }

  isStartupTimeoutSet(): boolean {
    return this.timeoutSet;
  }

  getStartupTimeout(): number {
    return this.timeoutMs;
  }
}

/** The image with a component's command and security context, on the host network. */
class PodContainer extends GenericContainer {
  constructor(imageName: string, c: Component) {
    super(imageName);
    this.withNetworkMode('host')
      .withCommand(c.command)
      .withUser(c.user)
      .withDroppedCapabilities(...c.dropCapabilities)
      .withTmpFs(c.tmpfs);
    if (!c.allowPrivilegeEscalation) this.withSecurityOpt('no-new-privileges');
    // No builder method for it in testcontainers; the Docker API's own field.
    this.hostConfig.ReadonlyRootfs = c.readOnlyRootFilesystem;
  }
}

export type Running = {
  component: Component;
  container: StartedTestContainer;
  port: number;
  url: string;
  logs(): string;
  /** Resolves once its log stream has ended (the container exited and every line it wrote has come). */
  logsEnded: Promise<void>;
  /** From the container's start (State.StartedAt) to the first 200 of /health/ready, and from the create call (image already local). */
  timeToServe: { fromStartMs: number; fromCreateMs: number };
};

/**
 * Starts a component's container and waits for its /health/ready from the host.
 * `from`: another image than the one under test (another architecture's);
 * `startupTimeoutMs`: a hang guard, longer for an image run under emulation.
 */
export async function startComponent(
  c: Component,
  env: Record<string, string> = {},
  { from = image, startupTimeoutMs = 60_000 }: { from?: string; startupTimeoutMs?: number } = {},
): Promise<Running> {
  const port = await freePort();
  let output = '';
  let endLogs!: () => void;
  const logsEnded = new Promise<void>((resolve) => (endLogs = resolve));
  const ready = new ReadyOnHostPort(port, '/health/ready');
  const createdAt = Date.now();
  const container = await new PodContainer(from, c)
    .withEnvironment(podEnvironment(c, { ...env, [c.portVariable]: String(port) }))
    .withWaitStrategy(ready)
    .withStartupTimeout(startupTimeoutMs)
    .withLogConsumer((stream) => {
      stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
      stream.once('end', endLogs);
      stream.once('close', endLogs);
    })
    .start();
  const timeToServe = { fromStartMs: ready.readyAt! - ready.startedAt!, fromCreateMs: ready.readyAt! - createdAt };
  return { component: c, container, port, url: `http://127.0.0.1:${port}`, logs: () => output, logsEnded, timeToServe };
}

/**
 * A document stored through a running API with the test tenant's key, read
 * back and compared byte for byte: its id.
 */
export async function storeAndReadBack(api: Running, body: Buffer<ArrayBuffer>): Promise<string> {
  const auth = { authorization: `Bearer ${apiKey}` };
  const created = await fetch(`${api.url}/documents`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/octet-stream' },
    body,
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const read = await fetch(`${api.url}/documents/${id}`, { headers: auth });
  expect(read.status, await read.clone().text()).toBe(200);
  expect(Buffer.from(await read.arrayBuffer()).equals(body)).toBe(true);
  return id;
}
