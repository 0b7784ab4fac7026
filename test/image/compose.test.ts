import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { getContainerRuntimeClient } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { readYaml, root } from '../infra/helpers.ts';
import { newOrder, waitFor } from '../orders/support.ts';

// `make compose-up` of docker-compose.emulators.yml, for real, as the README
// tells a newcomer: scripts/compose.sh picks the compose the machine has
// (here Debian's docker-compose against the podman API the global setup
// provides, through DOCKER_HOST), every host port set to a free one, the
// images `make test-image` built (compose-up's own build finds them cached).
// Then `make compose-down`.

const file = 'docker-compose.emulators.yml';
const project = `docsvc-test-${process.pid}`;
const services = Object.keys(readYaml(file).services).sort();
const portVariables = [
  'DOCSVC_API_PORT',
  'DOCSVC_RELAY_METRICS_PORT',
  'DOCSVC_CONSUMER_METRICS_PORT',
  'DOCSVC_LIFECYCLE_METRICS_PORT',
  'DOCSVC_AWS_EMULATOR_PORT',
  'DOCSVC_DYNAMODB_EMULATOR_PORT',
  'DOCSVC_REDIS_PORT',
] as const;
let ports: Record<(typeof portVariables)[number], number>;
let downed = false;

const composeCommand: string[] = process.env.COMPOSE
  ? process.env.COMPOSE.split(' ')
  : spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0
    ? ['docker-compose']
    : ['docker', 'compose'];

function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  const env = { ...process.env, COMPOSE_PROJECT: project, ...Object.fromEntries(Object.entries(ports).map(([key, port]) => [key, String(port)])) };
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env, timeout: timeoutMs });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** The make targets a newcomer runs. */
const make = (target: string, timeoutMs = 300_000) => run('make', ['--no-print-directory', target], timeoutMs);

/** The compose tool itself, for what the make targets do not offer (logs). */
function compose(args: string[], timeoutMs = 120_000) {
  const [command = 'docker-compose', ...prefix] = composeCommand;
  return run(command, [...prefix, '-p', project, '-f', file, ...args], timeoutMs);
}

/**
 * podman schedules HEALTHCHECKs with systemd timers; without systemd (as in
 * this machine's containers) none runs, and nothing in the compose file waits
 * for one. To check that each container's own check passes, this runs them
 * with `podman healthcheck run`, every 2 s, as the timers would.
 */
function scheduleHealthchecks(): () => void {
  const needed = process.env.CONTAINER_RUNTIME !== 'docker' && !existsSync('/run/systemd/system');
  if (!needed) return () => {};
  let stopped = false;
  const runOnce = () => {
    const ids = spawnSync('podman', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'status=running'], {
      encoding: 'utf8',
    }).stdout.split('\n').filter(Boolean);
    return Promise.all(
      ids.map((id) => new Promise((resolve) => spawn('podman', ['healthcheck', 'run', id], { stdio: 'ignore' }).on('close', resolve))),
    );
  };
  void (async () => {
    while (!stopped) {
      await runOnce();
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
  return () => {
    stopped = true;
  };
}

type ProjectContainer = { service: string; state: string; health: string | undefined; exitCode: number; id: string };

async function projectContainers(): Promise<ProjectContainer[]> {
  const client = await getContainerRuntimeClient();
  const listed = await client.container.dockerode.listContainers({
    all: true,
    filters: { label: [`com.docker.compose.project=${project}`] },
  });
  return Promise.all(
    listed.map(async (info) => {
      const { State } = await client.container.inspect(client.container.getById(info.Id));
      return {
        service: info.Labels['com.docker.compose.service'] ?? '',
        state: State.Status,
        health: State.Health?.Status,
        exitCode: State.ExitCode,
        id: info.Id,
      };
    }),
  );
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

let stopHealthchecks: () => void = () => {};
const api = () => `http://127.0.0.1:${ports.DOCSVC_API_PORT}`;

let upOutput = '';

beforeAll(async () => {
  ports = Object.fromEntries(await Promise.all(portVariables.map(async (key) => [key, await freePort()]))) as typeof ports;
  stopHealthchecks = scheduleHealthchecks();
  const up = await make('compose-up');
  upOutput = up.output;
  expect(up.code, up.output).toBe(0);
}, 320_000);

afterAll(async () => {
  if (!downed) await make('compose-down', 120_000);
  stopHealthchecks();
});

describe(`make compose-up of ${file}`, () => {
  it('returns once the API answers, saying which compose it used', async () => {
    expect(upOutput).toMatch(/compose: (docker-compose|docker compose|podman-compose) with (docker|podman), project /);
    expect(upOutput).toContain(`compose: service on http://127.0.0.1:${ports.DOCSVC_API_PORT}`);
    expect((await fetch(`${api()}/health/ready`)).status).toBe(200);
  });

  it('runs every long-lived service healthy, after one bootstrap that exited 0', async () => {
    const longLived = services.filter((service) => service !== 'bootstrap');
    const containers = await waitFor(
      async () => {
        const all = await projectContainers();
        const healthy = longLived.every((service) =>
          all.some((c) => c.service === service && c.state === 'running' && c.health === 'healthy'),
        );
        return healthy ? all : undefined;
      },
      120_000,
      'every service to be healthy',
    );
    expect(containers.map((c) => c.service).sort()).toEqual(services);
    const bootstraps = containers.filter((c) => c.service === 'bootstrap');
    expect(bootstraps).toHaveLength(1);
    expect(bootstraps[0]).toMatchObject({ state: 'exited', exitCode: 0 });
    const logs = await compose(['logs', '--no-color', 'bootstrap']);
    expect(logs.output.match(/resources ready/g)).toHaveLength(1);
  }, 150_000);

  it('stores a document and takes an order through to the consumer', async () => {
    const created = await fetch(`${api()}/documents`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello, compose' });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(await (await fetch(`${api()}/documents/${id}`)).text()).toBe('hello, compose');

    const accepted = await fetch(`${api()}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(newOrder(1)),
    });
    expect(accepted.status).toBe(201);
    const { orderId } = (await accepted.json()) as { orderId: string };
    await waitFor(
      async () => {
        const order = (await (await fetch(`${api()}/orders/${orderId}`)).json()) as { event: { status: string } };
        return order.event.status === 'PUBLISHED';
      },
      20_000,
      'the order to be PUBLISHED',
    );
    const applied = await waitFor(
      async () => {
        const text = await fetch(`http://127.0.0.1:${ports.DOCSVC_CONSUMER_METRICS_PORT}/metrics`).then((r) => r.text(), () => '');
        return /^order_events_consumed_total\{result="applied"\} (\d+)$/m.exec(text)?.[1];
      },
      20_000,
      'the consumer to apply the event',
    );
    expect(applied).toBe('1');
  });

  it('leaves nothing behind after `make compose-down`: no container, no network, no listener', async () => {
    const down = await make('compose-down', 120_000);
    downed = true;
    expect(down.code, down.output).toBe(0);
    expect(await projectContainers()).toEqual([]);
    const client = await getContainerRuntimeClient();
    const networks = await client.container.dockerode.listNetworks({ filters: { label: [`com.docker.compose.project=${project}`] } });
    expect(networks).toEqual([]);
    for (const [key, port] of Object.entries(ports)) expect(await accepts(port), key).toBe(false);
  });
});
