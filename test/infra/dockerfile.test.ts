// Dockerfile and .dockerignore: lint clean, and the image is what the
// deployments expect (Node 24, production dependencies, non-root, health check).
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { RUNTIME_FLAGS } from '../../src/processes/v8-flags.ts';
import { defaultOf, entryPoints, exists, readText, routes, tools } from './helpers.ts';

type Instruction = { keyword: string; args: string };
type Stage = { name: string | undefined; image: string; platform: string | undefined; instructions: Instruction[] };

const dockerfile = readText('Dockerfile');

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

function stages(all: Instruction[]): Stage[] {
  const args: Record<string, string> = {};
  const result: Stage[] = [];
  const resolve = (text: string) => text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => args[a ?? b ?? ''] ?? '');
  for (const instruction of all) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/);
      const platform = words[0]?.startsWith('--platform=') ? words.shift()?.slice('--platform='.length) : undefined;
      const [image = '', as, name] = words;
      result.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, image: resolve(image), platform, instructions: [] });
    } else if (result.length === 0 && instruction.keyword === 'ARG') {
      const [key = '', value = ''] = instruction.args.split('=');
      args[key] = resolve(value);
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

const all = instructions(dockerfile);
const built = stages(all);
const final = built.at(-1);
const inFinal = (keyword: string): Instruction[] => final?.instructions.filter((i) => i.keyword === keyword) ?? [];
const jsonArgs = (instruction: Instruction | undefined): string[] => JSON.parse(instruction?.args ?? 'null');

describe('Dockerfile', () => {
  it('lints clean with dockerfile-utils (no error, no warning)', () => {
    expect(validate(dockerfile)).toEqual([]);
  });

  it('builds in several stages from a pinned Node image of the development major', () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    const nodeMajor = /^>=(\d+)/.exec(JSON.parse(readText('package.json')).engines.node)?.[1];
    for (const stage of built) {
      if (built.some((s) => s.name === stage.image)) continue; // FROM an earlier stage
      expect(stage.image).toMatch(new RegExp(`^node:${nodeMajor}\\.\\d+\\.\\d+-(bookworm-slim|alpine[\\d.]*)$`));
    }
  });

  it('puts only production dependencies and the compiled code in the final image', () => {
    const npmInstalls = all.filter((i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args));
    expect(npmInstalls.some((i) => /npm ci --omit=dev\b/.test(i.args))).toBe(true);
    expect(inFinal('RUN').some((i) => /\bnpm (ci|install)\b/.test(i.args))).toBe(false);
    const copies = inFinal('COPY').map((i) => i.args);
    const prodStage = built.find((s) => s.instructions.some((i) => /npm ci --omit=dev\b/.test(i.args)));
    expect(copies).toContain(`--from=${prodStage?.name} /app/node_modules ./node_modules`);
    expect(copies.some((c) => /^--from=\w+ \/app\/dist \.\/dist$/.test(c))).toBe(true);
    // dist/*.js are ES modules only because package.json says "type": "module".
    expect(copies).toContain('package.json ./');
    expect(inFinal('ENV').map((i) => i.args)).toContain('NODE_ENV=production');
  });

  it('runs every process with the Node flags of src/processes/v8-flags.ts', () => {
    expect(inFinal('ENV').map((i) => i.args)).toContain(`NODE_OPTIONS=${RUNTIME_FLAGS.join(' ')}`);
    expect(RUNTIME_FLAGS.every((flag) => !/\s/.test(flag))).toBe(true); // NODE_OPTIONS splits at spaces
  });

  it('runs as a numeric non-root uid:gid that no user of the nodes has (≥ 10000), so the kubelet can verify runAsNonRoot', () => {
    const user = inFinal('USER').at(-1)?.args;
    expect(user).toMatch(/^\d+:\d+$/);
    const [uid, gid] = user!.split(':').map(Number) as [number, number];
    expect(uid).toBeGreaterThanOrEqual(10_000);
    expect(gid).toBeGreaterThanOrEqual(10_000);
  });

  it('starts the API by default, with a HEALTHCHECK on its liveness route and port', () => {
    expect(jsonArgs(inFinal('CMD').at(-1))).toEqual(['node', entryPoints.api]);
    expect(inFinal('ENTRYPOINT')).toHaveLength(0); // the command alone picks the process
    const [healthcheck, ...more] = inFinal('HEALTHCHECK');
    expect(more).toHaveLength(0);
    // Shell form, so that the check follows the PORT the container is given.
    const command = /\bCMD (.*)$/.exec(healthcheck?.args ?? '')?.[1];
    expect(command).toBe(`node ${tools.healthcheck} "\${PORT:-${defaultOf('PORT')}}" /health/live`);
    expect(routes.api).toContain('/health/live');
  });

  it('keeps the local tools (make dev, the emulators) out of the service image, in an emulators target of their own', () => {
    const build = built.find((s) => s.instructions.some((i) => /npm run build/.test(i.args)));
    expect(build?.instructions.find((i) => /npm run build/.test(i.args))?.args).toMatch(/&& mv dist\/local \/local$/);
    const emulators = built.find((s) => s.name === 'emulators');
    expect(emulators?.image).toBe(built[0]?.image); // the same base as the service
    expect(emulators?.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args)).toContain(`--from=${build?.name} /local ./dist/local`);
    expect(jsonArgs(emulators?.instructions.filter((i) => i.keyword === 'CMD').at(-1))).toEqual(['node', tools.emulators]);
    expect(emulators?.instructions.some((i) => i.keyword === 'USER' && i.args === 'node')).toBe(true);
    // The default target (the last stage) is the service.
    expect(final?.name).toBe('runtime');
  });

  it('builds for any architecture: the stages that make only portable files run on the build platform, the runtime on the target', () => {
    const byName = (name: string) => built.find((s) => s.name === name);
    // npm ci and tsc never run under emulation: their output is the same on every architecture…
    for (const name of ['deps', 'build', 'emulator-packages']) expect(byName(name)?.platform, name).toBe('$BUILDPLATFORM');
    // …and what runs is the target's: its Node binary and its Debian packages.
    expect(final?.platform).toBeUndefined();
    expect(byName('emulators')?.platform).toBeUndefined();
    expect(dockerfile).toMatch(/^ARG BUILD_NODE_IMAGE=\$\{NODE_IMAGE\}$/m);
    // Portable only while no production dependency has a native part, a
    // platform-specific variant or an install script.
    const locked = JSON.parse(readText('package-lock.json')).packages as Record<string, Record<string, unknown>>;
    const native = Object.entries(locked).filter(
      ([path, p]) => path !== '' && !p.dev && (p.cpu || p.os || p.hasInstallScript || p.gypfile || /\.node$/.test(path)),
    );
    expect(native.map(([path]) => path)).toEqual([]);
  });

  it('exposes the API port and the workers metrics port', () => {
    const exposed = inFinal('EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toContain(defaultOf('PORT'));
    expect(exposed).toContain(defaultOf('METRICS_PORT'));
  });
});

describe('.dockerignore', () => {
  const lines = readText('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const allowed = lines.filter((line) => line.startsWith('!')).map((line) => line.slice(1).replace(/\/$/, ''));

  it('is an allow-list of files that exist, none of them secrets, state or build output', () => {
    expect(lines[0]).toBe('*');
    for (const path of allowed) {
      expect(exists(path), path).toBe(true);
      expect(path).not.toMatch(/node_modules|dist|\.env|terraform|tfstate|\.git\b/);
    }
  });

  it('lets in every file the Dockerfile copies from the build context', () => {
    const sources = all
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(allowed, source).toContain(source.replace(/\/$/, ''));
  });
});
