import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local/emulators.ts';
import { waitFor } from '../orders/support.ts';

// `make dev` (node src/local/dev.ts) twice on one host, side by side: every
// port comes from the environment, the relay's and the consumer's metrics
// ports too (a free one when unset), and each is printed.

type Dev = { child: ChildProcess; output: () => string };
const running: Dev[] = [];

function startDev(env: Record<string, string>): Dev {
  let output = '';
  const child = spawn(process.execPath, [new URL('../../src/local/dev.ts', import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const dev = { child, output: () => output };
  running.push(dev);
  return dev;
}

async function stackPorts(): Promise<Record<string, string>> {
  const names = ['PORT', 'AWS_EMULATOR_PORT', 'DYNAMODB_EMULATOR_PORT', 'REDIS_PORT'];
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, String(await freePort())])));
}

const ready = (port: string) =>
  fetch(`http://127.0.0.1:${port}/health/ready`).then((response) => response.status === 200, () => false);

afterAll(async () => {
  for (const dev of running) if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
});

describe('make dev', () => {
  it('runs twice side by side, each on its own ports, printing the metrics ports of the relay and the consumer', async () => {
    const first = await stackPorts();
    const second: Record<string, string> = { ...(await stackPorts()), RELAY_METRICS_PORT: String(await freePort()), CONSUMER_METRICS_PORT: String(await freePort()) };
    const devs = [startDev(first), startDev(second)];

    // Each background process prints the port of its probes and metrics.
    const workers = ['relay', 'consumer', 'lifecycle'];
    const printed = await Promise.all(
      devs.map((dev) =>
        waitFor(
          async () => {
            const text = dev.output();
            const found = Object.fromEntries(
              [...text.matchAll(/(\w+): \/health\/ready and \/metrics on http:\/\/localhost:(\d+)/g)].map((m) => [m[1], m[2]]),
            );
            return text.includes('service on http://localhost:') && workers.every((w) => found[w]) ? found : undefined;
          },
          40_000,
          `make dev to start:\n${dev.output()}`,
        ),
      ),
    );
    expect(printed[1]).toMatchObject({ relay: second.RELAY_METRICS_PORT, consumer: second.CONSUMER_METRICS_PORT });
    const ports = [first.PORT, second.PORT, ...printed.flatMap((p) => workers.map((w) => p[w]))];
    expect(new Set(ports).size).toBe(2 + 2 * workers.length);
    for (const port of ports) await waitFor(() => ready(port ?? ''), 30_000, `/health/ready on :${port}`);

    const exits = devs.map((dev) => once(dev.child, 'exit'));
    for (const dev of devs) dev.child.kill('SIGTERM');
    const codes = (await Promise.all(exits)).map(([code]) => code);
    expect(codes, devs.map((dev) => dev.output()).join('\n')).toEqual([0, 0]);
  }, 90_000);
});
