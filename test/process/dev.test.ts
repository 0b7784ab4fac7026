import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../support/ports.ts';
import { waitFor } from '../orders/support.ts';

// `make dev` (node src/local/dev.ts) twice on one host, side by side: every
// port comes from the environment, the background processes' metrics ports
// too, and each is printed, once every process answers /health/ready.

type Dev = { child: ChildProcess; output: () => string };
const running: Dev[] = [];

function startDev(env: Record<string, string>): Dev {
  let output = '';
  const child = spawn(process.execPath, [new URL('../../src/local/dev.ts', import.meta.url).pathname], {
    // The stall check off: eight processes and two stacks on two cores lag
    // past 200 ms now and then, and readiness says so; this is about ports.
    env: { ...process.env, LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const dev = { child, output: () => output };
  running.push(dev);
  return dev;
}

const PORT_NAMES = ['PORT', 'AWS_EMULATOR_PORT', 'DYNAMODB_EMULATOR_PORT', 'REDIS_PORT', 'RELAY_METRICS_PORT', 'CONSUMER_METRICS_PORT', 'LIFECYCLE_METRICS_PORT'];

/** The ports of `stacks` side-by-side make devs, all distinct. */
async function stackPorts(stacks: number): Promise<Record<string, string>[]> {
  const ports = await freePorts(stacks * PORT_NAMES.length);
  return Array.from({ length: stacks }, (_, i) =>
    Object.fromEntries(PORT_NAMES.map((name, j) => [name, String(ports[i * PORT_NAMES.length + j])])),
  );
}

/** 200, or what came instead (a status and its body, or the error), for the failure's message. */
const ready = (port: string) =>
  fetch(`http://127.0.0.1:${port}/health/ready`).then(
    async (response) => (response.status === 200 ? 200 : `${response.status} ${await response.text()}`),
    (error: unknown) => String(error),
  );

afterAll(async () => {
  for (const dev of running) if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
});

describe('make dev', () => {
  it('runs twice side by side, each on its own ports, printing them once every process answers /health/ready', async () => {
    const [first, second] = await stackPorts(2);
    if (!first || !second) throw new Error('two sets of ports');
    const devs = [startDev(first), startDev(second)];

    // Each background process prints the port of its probes and metrics.
    const workers = ['relay', 'consumer', 'content-sweeper'];
    // Two stacks and eight processes starting on two cores: beside other work that took over 40 s
    // once, so the limit only catches a start that never ends, and the failure shows what was printed.
    const printed = await Promise.all(
      devs.map((dev) =>
        waitFor(
          async () => {
            const text = dev.output();
            const found = Object.fromEntries(
              [...text.matchAll(/([\w-]+): \/health\/ready and \/metrics on http:\/\/localhost:(\d+)/g)].map((m) => [m[1], m[2]]),
            );
            return text.includes('service on http://localhost:') && workers.every((w) => found[w]) ? found : undefined;
          },
          120_000,
          'make dev to start',
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}; it printed:\n${dev.output()}`);
        }),
      ),
    );
    for (const [i, given] of [first, second].entries()) {
      expect(printed[i]).toEqual({ relay: given.RELAY_METRICS_PORT, consumer: given.CONSUMER_METRICS_PORT, 'content-sweeper': given.LIFECYCLE_METRICS_PORT });
    }
    const ports = [first.PORT, second.PORT, ...printed.flatMap((p) => workers.map((w) => p[w]))];
    expect(new Set(ports).size).toBe(2 + 2 * workers.length);
    // Printed only once true: each answers at once, no waiting.
    for (const port of ports) expect(await ready(port ?? ''), `/health/ready on :${port}`).toBe(200);

    // A port in use is named with its variable before anything starts.
    const clash = startDev({ ...(await stackPorts(1))[0], CONSUMER_METRICS_PORT: first.CONSUMER_METRICS_PORT! });
    const [clashCode] = await once(clash.child, 'exit');
    expect(clashCode).toBe(1);
    expect(clash.output()).toContain(`in use already: CONSUMER_METRICS_PORT=${first.CONSUMER_METRICS_PORT}`);

    const exits = devs.map((dev) => once(dev.child, 'exit'));
    for (const dev of devs) dev.child.kill('SIGTERM');
    const codes = (await Promise.all(exits)).map(([code]) => code);
    expect(codes, devs.map((dev) => dev.output()).join('\n')).toEqual([0, 0]);
  }, 180_000);
});
