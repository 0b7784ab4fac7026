// `make ecr-push` and `make ecr-replicate` run for real against fake `aws`,
// `terraform`, `podman`, `docker` and `skopeo` on PATH: no ECR emulator
// exists, so these record every call and keep, per region, the tags "ECR"
// has. What the real service does beyond them (docs/deploy.md, "Re-running
// ecr-push"): describe-images fails with ImageNotFoundException (exit 254)
// for a missing tag, as the fake does; a push of an existing tag to an
// immutable repository fails with ImageTagAlreadyExistsException, which the
// fake does not simulate because the Makefile must never get there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { root } from './helpers.ts';

const account = '123456789012';
const repository = (region: string) => `${account}.dkr.ecr.${region}.amazonaws.com/docsvc`;
const primary = repository('eu-west-1');
const tag = '0123456789ab';
const listDigest = `sha256:${'a'.repeat(64)}`;

// Each fake appends "<tool> <args>" to $FAKE_LOG. ECR's tags are files
// $FAKE_ECR/<region>/<tag> holding the digest.
const fakes: Record<string, string> = {
  aws: `#!/bin/bash
echo "aws $*" >> "$FAKE_LOG"
region=$(echo "$*" | sed -n 's/.*--region \\([^ ]*\\).*/\\1/p')
case "$1 $2" in
  "ecr get-login-password") echo token ;;
  "ecr describe-images")
    [ -z "$FAKE_AWS_ERROR" ] || { echo "$FAKE_AWS_ERROR" >&2; exit 254; }
    t=$(echo "$*" | sed -n 's/.*imageTag=\\([^ ]*\\).*/\\1/p')
    if [ -f "$FAKE_ECR/$region/$t" ]; then cat "$FAKE_ECR/$region/$t"; else
      echo "An error occurred (ImageNotFoundException) when calling the DescribeImages operation: The image with imageId {imageDigest:'null', imageTag:'$t'} does not exist" >&2; exit 254; fi ;;
  *) exit 1 ;;
esac
`,
  terraform: `#!/bin/bash
echo "terraform $*" >> "$FAKE_LOG"
case "$*" in
  *"-raw ecr_repository_url") printf %s ${JSON.stringify(primary)} ;;
  *"-raw region") printf eu-west-1 ;;
  *"-json region_clusters") printf %s "$FAKE_CLUSTERS" ;;
  *) exit 1 ;;
esac
`,
  // Pushing a list by digest and under the tag: the tag's digest is the list's.
  podman: `#!/bin/bash
echo "podman $*" >> "$FAKE_LOG"
case "$1 $2" in
  "login "*) cat > /dev/null ;;
  "image inspect") echo "$FAKE_STANDIN" ;;
  "manifest push") t=\${!#}; t=\${t##*:}; mkdir -p "$FAKE_ECR/eu-west-1"; echo ${listDigest} > "$FAKE_ECR/eu-west-1/$t" ;;
esac
`,
  docker: `#!/bin/bash
echo "docker $*" >> "$FAKE_LOG"
case "$1" in
  login) cat > /dev/null ;;
  buildx) mkdir -p "$FAKE_ECR/eu-west-1"; echo ${listDigest} > "$FAKE_ECR/eu-west-1/${tag}" ;;
  info|version) exit 1 ;;
esac
`,
  // A copy to docker://<account>.dkr.ecr.<region>.amazonaws.com/docsvc:<tag> keeps the digest (--preserve-digests).
  skopeo: `#!/bin/bash
echo "skopeo $*" >> "$FAKE_LOG"
case "$1" in
  login) cat > /dev/null ;;
  copy) dst=\${!#}; region=$(echo "$dst" | sed -n 's/.*\\.ecr\\.\\([^.]*\\)\\..*/\\1/p'); mkdir -p "$FAKE_ECR/$region"
        [[ "$*" == *--preserve-digests* ]] && d=${listDigest} || d=sha256:other; echo "$d" > "$FAKE_ECR/$region/\${dst##*:}" ;;
esac
`,
};

let dir: string;
let log: string;
let ecr: string;
let imageEnv: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'docsvc-fake-ecr-'));
  mkdirSync(join(dir, 'bin'));
  for (const [name, text] of Object.entries(fakes)) writeFileSync(join(dir, 'bin', name), text, { mode: 0o755 });
  log = join(dir, 'calls.log');
  writeFileSync(log, '');
  ecr = join(dir, 'ecr');
  imageEnv = join(dir, 'image.env');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function pushed(region: string, digest = listDigest) {
  mkdirSync(join(ecr, region), { recursive: true });
  writeFileSync(join(ecr, region, tag), `${digest}\n`);
}

function make(target: string, env: Record<string, string> = {}, ...vars: string[]) {
  const run = spawnSync('make', ['--no-print-directory', target, `IMAGE_TAG=${tag}`, `IMAGE_ENV=${imageEnv}`, ...vars], {
    cwd: root,
    encoding: 'utf8',
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'CONTAINER_RUNTIME')),
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      FAKE_LOG: log,
      FAKE_ECR: ecr,
      FAKE_STANDIN: '',
      FAKE_AWS_ERROR: '',
      FAKE_CLUSTERS: '{}',
      ...env,
    },
  });
  const calls = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  return { code: run.status, output: `${run.stdout}${run.stderr}`, calls };
}

const written = () => (existsSync(imageEnv) ? readFileSync(imageEnv, 'utf8') : undefined);

describe('make ecr-push', () => {
  it('builds each architecture, pushes them as one manifest list under the tag, and records the digest ECR reports for it', () => {
    const { code, output, calls } = make('ecr-push', {}, 'CONTAINER_RUNTIME=podman');
    expect(code, output).toBe(0);
    const podman = calls.filter((c) => c.startsWith('podman '));
    for (const arch of ['amd64', 'arm64']) {
      expect(podman).toContainEqual(expect.stringMatching(new RegExp(`^podman build .*--format docker .*--platform linux/${arch} -t ${primary}:${tag}-${arch} \\.$`)));
      expect(podman).toContain(`podman manifest add ${primary}:${tag} containers-storage:${primary}:${tag}-${arch}`);
    }
    expect(podman).toContain(`podman manifest create ${primary}:${tag}`);
    // --all: the architectures' images too, not only the list that names them.
    expect(podman.at(-1)).toBe(`podman manifest push --all --format v2s2 ${primary}:${tag} docker://${primary}:${tag}`);
    // The per-architecture names are local: no push of them, no tag of them in ECR.
    expect(podman.filter((c) => /^podman (push|manifest push)/.test(c))).toHaveLength(1);
    expect(written()).toBe(`IMAGE=${primary}:${tag}@${listDigest}\n`);
  });

  it('with docker, builds and pushes both architectures as one list with buildx, from the registry base', () => {
    const { code, output, calls } = make('ecr-push', {}, 'CONTAINER_RUNTIME=docker');
    expect(code, output).toBe(0);
    const build = calls.find((c) => c.startsWith('docker buildx build'));
    expect(build).toMatch(/--pull --provenance=false --platform linux\/amd64,linux\/arm64 -t \S+:0123456789ab --push \.$/);
    expect(build).not.toMatch(/--runtime|--ulimit/);
    expect(written()).toBe(`IMAGE=${primary}:${tag}@${listDigest}\n`);
  });

  it('run again on the same commit: finds the tag in ECR, builds and pushes nothing, and still writes k8s/image.env', () => {
    pushed('eu-west-1');
    const { code, output, calls } = make('ecr-push', {}, 'CONTAINER_RUNTIME=podman');
    expect(code, output).toBe(0);
    expect(output).toContain('already in ECR');
    expect(calls.filter((c) => !c.startsWith('terraform '))).toEqual([
      `aws ecr describe-images --region eu-west-1 --repository-name docsvc --image-ids imageTag=${tag} --query imageDetails[0].imageDigest --output text`,
    ]);
    expect(written()).toBe(`IMAGE=${primary}:${tag}@${listDigest}\n`);
  });

  it('stops on any other answer from ECR (credentials, no repository), before building, and writes nothing', () => {
    const { code, output, calls } = make('ecr-push', { FAKE_AWS_ERROR: 'An error occurred (AccessDeniedException) when calling the DescribeImages operation' }, 'CONTAINER_RUNTIME=podman');
    expect(code).not.toBe(0);
    expect(output).toContain('AccessDeniedException');
    expect(calls.some((c) => c.startsWith('podman '))).toBe(false);
    expect(written()).toBeUndefined();
  });

  it('refuses an image built on the local stand-in base, before anything is pushed', () => {
    const { code, output, calls } = make('ecr-push', { FAKE_STANDIN: 'true' }, 'CONTAINER_RUNTIME=podman');
    expect(code).not.toBe(0);
    expect(output).toContain('local stand-in base: never pushed');
    expect(calls.some((c) => /manifest (create|push)/.test(c))).toBe(false);
    expect(written()).toBeUndefined();
  });
});

describe('make ecr-replicate', () => {
  const clusters = (...regions: string[]) =>
    JSON.stringify(Object.fromEntries(regions.map((region) => [region, { cluster_name: `docsvc-${region}`, image_repository: repository(region) }])));

  it('copies the tag pushed before a region was added into that region, every architecture, with the same digest', () => {
    pushed('eu-west-1');
    const { code, output, calls } = make('ecr-replicate', { FAKE_CLUSTERS: clusters('eu-west-1', 'us-east-1') });
    expect(code, output).toBe(0);
    const copies = calls.filter((c) => c.startsWith('skopeo copy'));
    expect(copies).toEqual([`skopeo copy --all --preserve-digests docker://${primary}:${tag} docker://${repository('us-east-1')}:${tag}`]);
    expect(readFileSync(join(ecr, 'us-east-1', tag), 'utf8').trim()).toBe(listDigest);
    // Logged in to both registries, each with its own region's token.
    expect(calls).toContain('aws ecr get-login-password --region us-east-1');
    expect(calls).toContain(`skopeo login --username AWS --password-stdin ${account}.dkr.ecr.us-east-1.amazonaws.com`);

    // Run again: every region has it; nothing is copied.
    writeFileSync(log, '');
    const again = make('ecr-replicate', { FAKE_CLUSTERS: clusters('eu-west-1', 'us-east-1') });
    expect(again.code, again.output).toBe(0);
    expect(again.calls.some((c) => c.startsWith('skopeo copy'))).toBe(false);
  });

  it('refuses a region whose tag names another image (tags are immutable), and a tag never pushed', () => {
    pushed('eu-west-1');
    pushed('us-east-1', `sha256:${'b'.repeat(64)}`);
    const mismatch = make('ecr-replicate', { FAKE_CLUSTERS: clusters('eu-west-1', 'us-east-1') });
    expect(mismatch.code).not.toBe(0);
    expect(mismatch.output).toContain(`not ${listDigest}`);
    expect(mismatch.calls.some((c) => c.startsWith('skopeo copy'))).toBe(false);

    rmSync(ecr, { recursive: true });
    const missing = make('ecr-replicate', { FAKE_CLUSTERS: clusters('eu-west-1', 'us-east-1') });
    expect(missing.code).not.toBe(0);
    expect(missing.output).toContain('make ecr-push first');
  });

  it('has nothing to copy with one region', () => {
    pushed('eu-west-1');
    const { code, output, calls } = make('ecr-replicate');
    expect(code, output).toBe(0);
    expect(output).toContain('nothing to copy');
    expect(calls.some((c) => c.startsWith('skopeo'))).toBe(false);
  });
});
