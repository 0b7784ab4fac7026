import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { component, image, type Running, startComponent, storeAndReadBack } from './support.ts';

// The images of the other architectures `make image` built (docsvc:<commit>-arm64
// on an x86 machine), run under QEMU's user-mode emulation as the API, on
// the local stack: what a Graviton node would run, short of the node.
// `make test-image` lists them in DOCSVC_ARCH_IMAGES ("arm64=docsvc:…"), and
// in DOCSVC_OTHER_ARCHES those the image is for besides this machine's own:
// one without an image fails (no emulator registered: .ci/run installs it).
const builtImages = new Map(
  (process.env.DOCSVC_ARCH_IMAGES ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((entry) => entry.split('=') as [string, string]),
);
const otherArches = (process.env.DOCSVC_OTHER_ARCHES ?? 'arm64').split(/\s+/).filter(Boolean);
const runtime = process.env.CONTAINER_RUNTIME ?? 'podman';
// Node's name of the architecture, and the kernel's (uname -m).
const names: Record<string, { node: string; machine: string }> = {
  amd64: { node: 'x64', machine: 'x86_64' },
  arm64: { node: 'arm64', machine: 'aarch64' },
};

const running: Running[] = [];
afterAll(async () => {
  await Promise.allSettled(running.map((r) => r.container.stop({ timeout: 1 })));
});

describe('the image of another architecture', () => {
  it.each(otherArches)('%s: is built for it, and its API starts and serves under emulation', async (arch) => {
    const name = builtImages.get(arch);
    if (!name) throw new Error(`make image built no linux/${arch} image: no emulator for it is registered here (Debian: apt-get install -y qemu-user-static binfmt-support)`);
    const inspect = (format: string, of: string) => execFileSync(runtime, ['image', 'inspect', '--format', format, of], { encoding: 'utf8' }).trim();
    expect(inspect('{{.Os}}/{{.Architecture}}', name)).toBe(`linux/${arch}`);
    // The same service: the same compiled code and dependencies as the image under test.
    expect(inspect('{{json .Config.Cmd}}', name)).toBe(inspect('{{json .Config.Cmd}}', image));

    // Emulated, Node runs many times slower, most of all the first time a
    // path runs (it compiles under emulation): a long hang guard, not a
    // measure, and deadlines and load shedding made for native speed taken
    // out of the way. With them, a read on a busy CI machine once got a 503.
    const slow = {
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
      AWS_CONNECT_TIMEOUT_MS: '30000',
      AWS_REQUEST_TIMEOUT_MS: '60000',
      REDIS_CONNECT_TIMEOUT_MS: '30000',
      REDIS_COMMAND_TIMEOUT_MS: '30000',
      ORDER_PUBLISH_TIMEOUT_MS: '30000',
    };
    const api = await startComponent(component('api'), slow, { from: name, startupTimeoutMs: 600_000 });
    running.push(api);
    const { output: machine } = await api.container.exec(['node', '-p', 'process.arch + " " + require("node:os").machine()']);
    expect(machine.trim()).toBe(`${names[arch]?.node} ${names[arch]?.machine}`);

    const live = await fetch(`${api.url}/health/live`);
    expect(live.status).toBe(200);
    // A document stored and read back through the whole stack: the store, the cache, the hashing.
    await storeAndReadBack(api, Buffer.from(`stored by the ${arch} image`));
  }, 900_000);
});
