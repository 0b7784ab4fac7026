// The Makefile's image and deployment targets, checked by make itself (dry
// runs print the recipes with every variable expanded) and by the one real
// run that is safe offline: ecr-push refusing a dirty tree.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readText, root } from './helpers.ts';

const make = (...args: string[]) => {
  const run = spawnSync('make', ['--no-print-directory', ...args], { cwd: root, encoding: 'utf8' });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
};
const makefile = readText('Makefile');
const standInLabel = /LABEL (org\.docsvc\.local-stand-in)=true/.exec(readText('scripts/build-base-image.sh'))?.[1];

describe('make image', () => {
  it('computes the tag once, from the commit, and names the image by it', () => {
    const assignments = makefile.match(/^IMAGE_TAG\s*[:?]?=.*$/gm) ?? [];
    expect(assignments).toHaveLength(1);
    expect(assignments[0]).toMatch(/^IMAGE_TAG := \$\(shell git rev-parse/);
    expect(makefile).toMatch(/^IMAGE\s+:= docsvc:\$\(IMAGE_TAG\)$/m);
  });

  it('builds with what podman needs here, and nothing podman-specific for docker', () => {
    const podman = make('-n', 'image', 'CONTAINER_RUNTIME=podman', 'IMAGE_TAG=0123456789ab').output;
    expect(podman).toMatch(/podman build --network host --runtime runc --format docker --ulimit nofile=20000:20000 --ulimit nproc=10000:10000 --build-arg NODE_IMAGE=\$base -t docsvc:0123456789ab -t docsvc:0123456789ab-(amd64|arm64) -t docsvc:local \./);
    const docker = make('-n', 'image', 'CONTAINER_RUNTIME=docker', 'IMAGE_TAG=0123456789ab').output;
    const build = docker.split('\n').find((line) => line.includes('docker build'));
    expect(build).toMatch(/docker build --network host +--build-arg NODE_IMAGE=\$base -t docsvc:0123456789ab/);
    expect(build).not.toMatch(/--runtime|--format|--ulimit/);
  });

  it("builds the other architecture too, on that architecture's base and this machine's build stages, when an emulator runs it", () => {
    const { output } = make('-n', 'image', 'CONTAINER_RUNTIME=podman', 'IMAGE_TAG=0123456789ab');
    const host = /-t docsvc:0123456789ab-(amd64|arm64) /.exec(output)?.[1];
    const other = host === 'amd64' ? 'arm64' : 'amd64';
    expect(output).toContain(`for arch in ${other}; do`);
    expect(output).toMatch(/grep -qx enabled \/proc\/sys\/fs\/binfmt_misc\/qemu-/);
    expect(output).toContain('not building linux/$arch: no emulator for it is registered here');
    expect(output).toContain('other=$(scripts/base-image.sh podman node:24.21.0-bookworm-slim $arch)');
    expect(output).toContain('if [ "$other" = "$base" ]; then platform="--platform linux/$arch"; else platform="--pull=never"; fi');
    expect(output).toMatch(/\$platform[\s\\]+--build-arg NODE_IMAGE=\$other --build-arg BUILD_NODE_IMAGE=\$base -t docsvc:0123456789ab-\$arch \./);
    // make test-image starts what was built.
    expect(make('-n', 'test-image', 'CONTAINER_RUNTIME=podman', 'IMAGE_TAG=0123456789ab').output).toContain('echo $arch=docsvc:0123456789ab-$arch');
  });

  it('falls back to the local stand-in base only through scripts/base-image.sh', () => {
    expect(make('-n', 'image', 'CONTAINER_RUNTIME=podman').output).toContain('scripts/base-image.sh podman node:24.21.0-bookworm-slim');
    expect(readText('Dockerfile')).toMatch(/^ARG NODE_IMAGE=node:24\.21\.0-bookworm-slim$/m);
  });
});

describe('the container runtime', () => {
  it("is podman when podman's API answers behind DOCKER_HOST: the docker CLI talking to it is not a Docker engine", () => {
    const dir = mkdtempSync(join(tmpdir(), 'docsvc-fake-docker-'));
    try {
      // A docker CLI whose engine is podman's compatible API, as after `export DOCKER_HOST=unix:///run/podman/podman.sock`.
      writeFileSync(join(dir, 'docker'), '#!/bin/sh\ncase "$1" in info) exit 0;; version) echo " Podman Engine"; exit 0;; esac\nexit 1\n', { mode: 0o755 });
      writeFileSync(join(dir, 'podman'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const run = spawnSync('make', ['--no-print-directory', '-n', 'image', 'IMAGE_TAG=0123456789ab'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'CONTAINER_RUNTIME')), PATH: `${dir}:${process.env.PATH}` },
      });
      expect(run.stdout).toContain('podman build --network host --runtime runc');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('make compose-up and compose-down', () => {
  it('build the images, then leave the compose to scripts/compose.sh, on the emulators file', () => {
    const up = make('-n', 'compose-up', 'CONTAINER_RUNTIME=podman', 'IMAGE_TAG=0123456789ab').output;
    expect(up).toContain('podman build');
    expect(up).toContain('--target emulators');
    expect(up).toContain('scripts/compose.sh up docker-compose.emulators.yml');
    expect(make('-n', 'compose-down').output).toContain('scripts/compose.sh down docker-compose.emulators.yml');
    const script = readText('scripts/compose.sh');
    for (const tool of ['docker compose', 'docker-compose', 'podman-compose']) expect(script, tool).toContain(tool);
    // DOCKER_HOST goes to compose only: never exported to the caller's shell or the Makefile.
    expect(script).not.toMatch(/export DOCKER_HOST/);
  });
});

describe('make ecr-push', () => {
  it('leaves building, pushing and recording to scripts/ecr-push.sh, for both architectures (test/infra/ecr.test.ts runs it)', () => {
    const { output } = make('-n', 'ecr-push', 'CONTAINER_RUNTIME=docker', 'IMAGE_TAG=0123456789ab');
    expect(output).toContain('RUNTIME=docker REPOSITORY=$repo REGION=$region TAG=0123456789ab IMAGE_ENV=k8s/image.env');
    expect(output).toContain('ARCHES="amd64 arm64" scripts/ecr-push.sh');
    // Built from the official base, and refused if it carries the stand-in's label.
    expect(output).not.toContain('NODE_IMAGE=');
    expect(standInLabel).toBeDefined();
    expect(readText('scripts/ecr-push.sh')).toContain(`index .Config.Labels "${standInLabel}"`);
  });

  it('refuses a tag that does not name a commit, before any call to AWS', () => {
    const { code, output } = make('ecr-push', 'IMAGE_TAG=0123456789ab-dirty');
    expect(code).not.toBe(0);
    expect(output).toContain('refusing to push 0123456789ab-dirty');
    expect(output).not.toMatch(/terraform|aws ecr/);
  });

  it('leaves k8s/image.env to ecr-push alone', () => {
    expect(make('-n', 'k8s-config').output).not.toContain('image.env');
  });
});

describe('make k8s-secret', () => {
  it('takes the keys from a file and applies server-side: nothing on a command line, no last-applied annotation', () => {
    const { output } = make('-n', 'k8s-secret');
    expect(output).toContain('--from-env-file=k8s/secret.env');
    expect(output).not.toContain('--from-literal');
    for (const apply of output.match(/kubectl apply[^|\n]*/g) ?? []) expect(apply).toContain('--server-side');
  });
});

describe('make install, make dev and make test', () => {
  it('run npm on the Node the service runs on, unpacked into .tools/ from the npm package', () => {
    const recipe = make('-n', '-B', 'install').output;
    expect(recipe).toContain('npm pack --silent "node-linux-');
    expect(recipe).toMatch(/PATH=\S*\/\.tools\/node-v\d+\.\d+\.\d+\/bin:\$PATH npm ci --no-audit --no-fund/);
    const locked = JSON.parse(readText('package-lock.json')).packages['node_modules/node'].version;
    expect(recipe).toContain(`.tools/node-v${locked}/bin`);
  });

  it('fetch promtool for make test only, unpacked from the Debian package, never installing the Prometheus server', () => {
    const dev = make('-n', 'dev').output;
    expect(dev).toContain('node src/local/dev.ts');
    expect(dev).not.toMatch(/promtool|prometheus/);
    const test = make('-n', 'test').output;
    expect(test).toContain('apt-get download -qq prometheus');
    expect(test).toContain('dpkg-deb -x');
    expect(test).toContain('.tools/bin/promtool');
    expect(test).not.toMatch(/apt-get install[^\n]*prometheus/);
    expect(readText('.ci/run')).not.toMatch(/missing\+=\(prometheus\)/);
  });
});

describe('.ci/run', () => {
  const ci = readText('.ci/run');

  it('installs what the tests need when it is missing, then runs make test and make test-image', () => {
    for (const tool of ['redis-server', 'podman', 'runc', 'debootstrap', 'docker-compose']) {
      expect(ci, tool).toMatch(new RegExp(`command -v ${tool} >/dev/null 2>&1 \\|\\|[^\\n]*missing\\+=\\(${tool}\\)`));
    }
    expect(ci.trim().split('\n').slice(-2)).toEqual(['make test', 'make test-image']);
  });

  it('registers QEMU, so that make test-image builds and starts the arm64 image too', () => {
    expect(ci).toMatch(/\nmountpoint -q \/proc\/sys\/fs\/binfmt_misc \|\| mount -t binfmt_misc binfmt_misc \/proc\/sys\/fs\/binfmt_misc\n/);
    expect(ci).toMatch(/\ncommand -v qemu-aarch64-static >\/dev\/null 2>&1 \|\| missing\+=\(qemu-user-static binfmt-support\)\n/);
    // Installed with the rest, before the tests.
    expect(ci.indexOf('qemu-user-static')).toBeLessThan(ci.indexOf('apt-get install'));
  });
});
