import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import startStack from '../support/global-setup.ts';

/**
 * For the image tests: the local stack on free host ports (as for `make
 * test`), and a Docker-compatible API for testcontainers and docker-compose.
 * With DOCKER_HOST set (a Docker engine, or a podman service of your own)
 * that is used; else this starts `podman system service` on a socket of its
 * own and stops it afterwards. Ryuk, testcontainers' reaper, is off: its image
 * cannot be pulled here, and every test removes what it starts.
 */
export default async function setup(project: TestProject) {
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const podman = process.env.DOCKER_HOST ? undefined : await startPodmanService();
  const stopStack = await startStack(project).catch(async (error: unknown) => {
    await podman?.stop();
    throw error;
  });
  return async () => {
    await stopStack();
    await podman?.stop();
  };
}

async function startPodmanService(): Promise<{ stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'docsvc-podman-'));
  const socket = join(dir, 'podman.sock');
  let output = '';
  const service: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
    env: { ...process.env, CONTAINERS_CONF: new URL('../../scripts/podman/containers.conf', import.meta.url).pathname },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  service.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 15_000;
  while (!(await ping(socket))) {
    if (service.exitCode !== null || Date.now() > deadline) {
      service.kill('SIGKILL');
      throw new Error(`podman system service did not answer on ${socket}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.env.DOCKER_HOST = `unix://${socket}`;
  return {
    async stop() {
      if (service.exitCode === null) {
        const exited = once(service, 'exit');
        service.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
