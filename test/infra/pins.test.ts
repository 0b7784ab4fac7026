// What `terraform init` fetches and where the state goes: every registry
// module and provider at an exact version (an init later or elsewhere builds
// the same thing), and the state in an S3 backend with S3's own locking,
// unless a trial asks for a local one; `make tf-init` picks which.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { describe, expect, it } from 'vitest';
import { type Json, loadTerraform, readText, root } from './helpers.ts';

/** terraform/ and every module folder under it (each holds .tf files). */
function terraformFolders(folder = 'terraform'): string[] {
  const children = readdirSync(join(root, folder), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .flatMap((entry) => terraformFolders(`${folder}/${entry.name}`));
  const hasTf = readdirSync(join(root, folder)).some((name) => name.endsWith('.tf'));
  return hasTf ? [folder, ...children] : children;
}
const folders = terraformFolders();
const configs = await Promise.all(folders.map(async (folder) => [folder, await loadTerraform(folder)] as const));
const exact = /^\d+\.\d+\.\d+$/;
const rootSettings = (await loadTerraform()).terraform;

describe('versions', () => {
  it('reads every folder of terraform/', () => {
    expect(folders).toEqual(expect.arrayContaining(['terraform', 'terraform/modules/region']));
  });

  it.each(folders)('%s: every registry module at an exact version, not a range', (folder) => {
    const tf = configs.find(([name]) => name === folder)![1];
    const registry = Object.entries(tf.module).filter(([, module]) => !String(module.source).startsWith('./'));
    for (const [name, module] of registry) expect(module.version, `module.${name}`).toMatch(exact);
    if (folder === 'terraform/modules/region') expect(registry.map(([name]) => name)).toEqual(expect.arrayContaining(['vpc', 'eks']));
  });

  it.each(folders)('%s: every provider it requires at an exact version (or, in a module, the root\'s)', (folder) => {
    const tf = configs.find(([name]) => name === folder)![1];
    for (const block of tf.terraform) {
      for (const providers of (block.required_providers ?? []) as Json[]) {
        for (const [name, provider] of Object.entries(providers as Record<string, Json>)) {
          if (folder === 'terraform') expect(provider.version, name).toMatch(exact);
          else if (provider.version !== undefined) expect(provider.version, name).toMatch(exact);
        }
      }
    }
  });

  it('needs Terraform 1.10 or later, which the S3 backend\'s own lock file needs', () => {
    const versions = rootSettings.map((block) => block.required_version).filter(Boolean);
    expect(versions).toHaveLength(1);
    const [, major, minor] = /^>= ?(\d+)\.(\d+)/.exec(versions[0]) ?? [];
    expect(Number(major) * 1000 + Number(minor)).toBeGreaterThanOrEqual(1010);
  });
});

describe('the state', () => {
  it('goes to S3, encrypted and locked by S3 itself, the bucket left to each deployment', () => {
    const backends = rootSettings.flatMap((block) => Object.entries(block.backend ?? {}));
    expect(backends.map(([type]) => type)).toEqual(['s3']);
    expect((backends as [string, Json[]][])[0]?.[1]).toEqual([{ use_lockfile: true, encrypt: true }]);
  });

  it('has an example of the settings tf-init passes, and keeps the real ones and the trial override out of git', async () => {
    const example = await parseHcl('backend.hcl', readText('terraform/backend.hcl.example'));
    expect(Object.keys(example).sort()).toEqual(['bucket', 'key', 'region']);
    const local = await parseHcl('local_override.tf', readText('terraform/local_override.tf.example'));
    expect(local.terraform[0].backend).toEqual({ local: [{}] });
    const ignored = readText('terraform/.gitignore').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['backend.hcl', 'local_override.tf', '*.tfstate']));
  });
});

describe('make tf-init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'docsvc-tf-init-'));
  const calls = join(dir, 'calls');
  // A terraform that records its arguments: what make would run.
  writeFileSync(join(dir, 'terraform'), `#!/bin/sh\necho "$@" >> ${calls}\n`, { mode: 0o755 });
  const backend = join(dir, 'backend.hcl');
  writeFileSync(backend, 'bucket = "b"\n');
  const override = join(dir, 'local_override.tf');
  writeFileSync(override, 'terraform {\n  backend "local" {}\n}\n');
  const missing = join(dir, 'missing');

  const init = (vars: Record<string, string>) => {
    rmSync(calls, { force: true });
    const run = spawnSync('make', ['--no-print-directory', 'tf-init', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
    return { code: run.status, output: `${run.stdout}${run.stderr}`, terraform: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
  };

  it('passes backend.hcl to terraform init when there is one', () => {
    const run = init({ TF_BACKEND_CONFIG: backend, TF_LOCAL_OVERRIDE: override });
    expect(run.code).toBe(0);
    expect(run.terraform).toEqual([`-chdir=terraform init -backend-config=${backend}`]);
  });

  it('keeps a local state only when the trial override asks for it', () => {
    const run = init({ TF_BACKEND_CONFIG: missing, TF_LOCAL_OVERRIDE: override });
    expect(run.code).toBe(0);
    expect(run.terraform).toEqual(['-chdir=terraform init']);
  });

  it('refuses, and runs no terraform, with neither', () => {
    const run = init({ TF_BACKEND_CONFIG: missing, TF_LOCAL_OVERRIDE: missing });
    expect(run.code).not.toBe(0);
    expect(run.terraform).toEqual([]);
    expect(run.output).toMatch(/backend\.hcl.*local_override\.tf/);
  });

  it('looks for them in terraform/ by default', () => {
    const dry = spawnSync('make', ['--no-print-directory', '-n', 'tf-init'], { cwd: root, encoding: 'utf8' }).stdout;
    expect(dry).toContain(`-f "${root}/terraform/backend.hcl"`);
    expect(dry).toContain(`-f "${root}/terraform/local_override.tf"`);
  });
});
