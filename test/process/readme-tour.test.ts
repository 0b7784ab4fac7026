import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevSettings } from '../../src/local/dev-settings.ts';
import { freePorts } from '../support/ports.ts';
import { waitFor } from '../orders/support.ts';

// The README's tour, pasted in order into a shell against `make dev`: every
// fenced `sh` command of "A short tour" and "Resumable uploads" runs, in one
// bash session (so ORDER=… and UPLOAD=… carry over), and each answer marked
// `# →` is checked:
//
//   # → 201, Name: value, … {"json":"…"} (a remark)
//       the HTTP status of `curl -i`/`curl -I`; each header named (a `<…>`
//       in its value stands for anything); the body, `…` standing for
//       anything; the remark in parentheses is for the reader only.
//   # → some text
//       a line the command prints (`…` for anything). Such a command only
//       reads (no -X, no body), and what it waits for may come a moment
//       later (the consumer's count), so it is repeated until it holds.
//
// Every command must exit 0. make dev runs on free ports: the README's
// localhost:3000 and :9465 are make dev's defaults (checked below), and are
// rewritten to the ports this run got.

type Command = { line: number; text: string; expect?: string };

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const defaultOf = (name: 'PORT' | 'CONSUMER_METRICS_PORT') => (DevSettings.properties[name] as unknown as { default: number }).default;
const defaults = { PORT: defaultOf('PORT'), CONSUMER_METRICS_PORT: defaultOf('CONSUMER_METRICS_PORT') };

/** The body of a `## title` section, up to the next `## `. */
function section(title: string): { text: string; offset: number } {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return { text: readme.slice(start, end < 0 ? undefined : end), offset: readme.slice(0, start).split('\n').length };
}

function commands(title: string): Command[] {
  const { text, offset } = section(title);
  const lines = text.split('\n');
  const found: Command[] = [];
  let inSh = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('```')) {
      inSh = !inSh && line.trim() === '```sh';
      continue;
    }
    if (!inSh || line.trim() === '') continue;
    const annotation = /^\s*# → (.*)$/.exec(line);
    if (annotation) {
      const last = found.at(-1);
      if (!last || last.expect) throw new Error(`README line ${offset + i}: an answer with no command before it`);
      last.expect = annotation[1];
      continue;
    }
    if (/^\s*#/.test(line)) continue;
    let text = line;
    const first = i;
    while (text.endsWith('\\')) text = `${text}\n${lines[++i]}`;
    const trailing = /\s# → (.*)$/.exec(text);
    found.push({ line: offset + first, text: trailing ? text.slice(0, trailing.index) : text, expect: trailing?.[1] });
  }
  return found;
}

const tour = [...commands('A short tour'), ...commands('Resumable uploads')];

/** A pattern with `…` (or `<…>` in a header) for anything, as a regular expression. */
const pattern = (text: string, placeholder: RegExp) =>
  new RegExp(text.split(placeholder).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^\\n]*'));

type Expectation =
  | { kind: 'http'; status: number; headers: [string, RegExp][]; body?: RegExp }
  | { kind: 'output'; line: RegExp; literal: string };

function expectation(text: string): Expectation {
  const http = /^(\d{3})((?:, [A-Za-z][A-Za-z-]*: [^,{(]+)*)(?: (\{.*\}))?(?: \(.*\))?$/.exec(text);
  if (!http) return { kind: 'output', line: pattern(text, /…/), literal: text };
  const headers = [...http[2]!.matchAll(/, ([A-Za-z][A-Za-z-]*): ([^,]+)/g)].map(
    ([, name, value]) => [name!.toLowerCase(), pattern(value!.trim(), /<[^>]*>/)] as [string, RegExp],
  );
  return { kind: 'http', status: Number(http[1]), headers, body: http[3] ? pattern(http[3], /…/) : undefined };
}

const readOnly = (command: string) => !/\s-X\s|\s-d\s|--data|\s-T\s/.test(command);
const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** One bash script: every command between markers, each output kept apart. */
function script(list: Command[], ports: { api: number; consumer: number }): string {
  const rewrite = (text: string) =>
    text.replaceAll(`localhost:${defaults.PORT}`, `localhost:${ports.api}`).replaceAll(`localhost:${defaults.CONSUMER_METRICS_PORT}`, `localhost:${ports.consumer}`);
  return list
    .map((command, index) => {
      const text = rewrite(command.text);
      const expected = command.expect ? expectation(command.expect) : undefined;
      const body =
        expected?.kind === 'output'
          ? // Repeated until its line appears (at most 150 times, 0.2 s apart): what it reads may come a moment later.
            [
              `for __try in $(seq 150); do __out=$(${text}); __rc=$?`,
              `  case "$__out" in *${expected.literal.split('…').map(quote).join('*')}*) break;; esac; sleep 0.2; done`,
              `printf '%s\\n' "$__out"; (exit $__rc)`,
            ].join('\n')
          : text;
      return `printf '\\n@@begin ${index}\\n'\n${body}\nprintf '\\n@@end ${index} %s\\n' "$?"`;
    })
    .join('\n');
}

function parseHttp(output: string): { status: number; headers: Map<string, string>; body: string } | undefined {
  // The last head of the answer (a 100 Continue comes before the real one).
  const heads = [...output.matchAll(/^HTTP\/[\d.]+ (\d{3})[^\n]*\r?\n((?:[^\r\n]+\r?\n)*)\r?\n/gm)];
  const head = heads.at(-1);
  if (!head) return undefined;
  const headers = new Map<string, string>();
  for (const line of head[2]!.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(head[1]), headers, body: output.slice(head.index! + head[0].length).trim() };
}

let dev: ChildProcess | undefined;
let devOutput = '';
let ports: { api: number; consumer: number };
let workdir: string;

beforeAll(async () => {
  const env: Record<string, string> = {};
  const names = ['PORT', 'AWS_EMULATOR_PORT', 'DYNAMODB_EMULATOR_PORT', 'REDIS_PORT', 'RELAY_METRICS_PORT', 'CONSUMER_METRICS_PORT', 'LIFECYCLE_METRICS_PORT'];
  const free = await freePorts(names.length);
  names.forEach((name, i) => (env[name] = String(free[i])));
  ports = { api: Number(env.PORT), consumer: Number(env.CONSUMER_METRICS_PORT) };
  dev = spawn(process.execPath, [new URL('../../src/local/dev.ts', import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev.stdout!.on('data', (chunk) => (devOutput += chunk));
  dev.stderr!.on('data', (chunk) => (devOutput += chunk));
  // make dev says "service on" once every process answers /health/ready.
  await waitFor(async () => devOutput.includes('[dev] service on ') || (dev!.exitCode !== null ? Promise.reject(new Error(devOutput)) : false), 60_000, `make dev:\n${devOutput}`);
  workdir = mkdtempSync(join(tmpdir(), 'docsvc-tour-'));
}, 90_000);

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = once(dev, 'exit');
    dev.kill('SIGTERM');
    await exited;
  }
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

describe("the README's tour, pasted in order against make dev", () => {
  it('names the ports make dev uses by default', () => {
    expect(defaults).toMatchObject({ PORT: 3000, CONSUMER_METRICS_PORT: 9465 });
    const named = new Set([...tour.map((c) => c.text).join('\n').matchAll(/localhost:(\d+)/g)].map((m) => Number(m[1])));
    expect([...named].sort()).toEqual([defaults.PORT, defaults.CONSUMER_METRICS_PORT].sort());
    expect(readme).toContain(`| the consumer's \`/health/ready\` and \`/metrics\` | ${defaults.CONSUMER_METRICS_PORT} |`);
  });

  it('has commands and answers to check, each answer understood', () => {
    expect(tour.length).toBeGreaterThanOrEqual(20);
    const checked = tour.filter((c) => c.expect);
    expect(checked.length).toBeGreaterThanOrEqual(18);
    for (const command of checked) {
      const expected = expectation(command.expect!);
      if (expected.kind === 'output') expect(readOnly(command.text), `README line ${command.line}: a repeated command must only read`).toBe(true);
      else expect(command.text, `README line ${command.line}: a status needs curl -i or -I`).toMatch(/curl -(i|I|si)\b/);
    }
  });

  it('answers every command as the README says', async () => {
    const run = spawnSync('bash', ['-c', script(tour, ports)], { cwd: workdir, encoding: 'utf8', timeout: 120_000 });
    expect(run.error).toBeUndefined();
    const outputs = new Map<number, { output: string; code: number }>();
    for (const m of run.stdout.matchAll(/@@begin (\d+)\n([\s\S]*?)\n@@end \1 (\d+)\n/g)) {
      outputs.set(Number(m[1]), { output: m[2]!, code: Number(m[3]) });
    }
    const failures: string[] = [];
    tour.forEach((command, index) => {
      const ran = outputs.get(index);
      const where = `README line ${command.line}: ${command.text.split('\n')[0]}`;
      if (!ran) return failures.push(`${where}\n  did not run (stderr: ${run.stderr.slice(-500)})`);
      if (ran.code !== 0) failures.push(`${where}\n  exited ${ran.code}:\n${ran.output}`);
      if (!command.expect) return;
      const expected = expectation(command.expect);
      if (expected.kind === 'output') {
        if (!expected.line.test(ran.output)) failures.push(`${where}\n  printed no line like ${command.expect}:\n${ran.output}`);
        return;
      }
      const answer = parseHttp(ran.output);
      if (!answer) return failures.push(`${where}\n  no HTTP answer:\n${ran.output}`);
      if (answer.status !== expected.status) failures.push(`${where}\n  answered ${answer.status}, the README says ${expected.status}:\n${ran.output}`);
      for (const [name, value] of expected.headers) {
        if (!value.test(answer.headers.get(name) ?? '')) failures.push(`${where}\n  ${name}: ${answer.headers.get(name)}, the README says ${value}`);
      }
      if (expected.body && !expected.body.test(answer.body)) failures.push(`${where}\n  body ${answer.body}\n  the README says ${command.expect}`);
    });
    expect(failures.join('\n\n')).toBe('');
    expect(outputs.size).toBe(tour.length);
  }, 150_000);
});
