import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ConfigSchema } from '../../src/config.ts';
import { Errors, errorDefinition, type ErrorCode } from '../../src/errors.ts';

// A newcomer reads the README, then docs/, not config.ts or errors.ts: they
// must not fall behind, and must not send the reader anywhere but the repository.
const root = new URL('../..', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const readme = read('README.md');
const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);

describe('README', () => {
  it('starts with the two commands a newcomer runs', () => {
    const top = readme.split('\n').slice(0, 40).join('\n');
    expect(top).toContain('make dev');
    expect(top).toContain('make test');
  });

  it('stays short enough to read in ten minutes, and points to every doc', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
    for (const doc of docs) expect(readme, doc).toContain(`](${doc})`);
  });
});

describe('docs/', () => {
  it('has the reference, the design, configuration, operations and deployment, each saying first who it is for', () => {
    for (const doc of ['docs/api.md', 'docs/design.md', 'docs/configuration.md', 'docs/operations.md', 'docs/deploy.md']) expect(docs).toContain(doc);
    for (const doc of docs) {
      const [title, ...rest] = read(doc).split('\n\n');
      expect(title, doc).toMatch(/^# /);
      expect(rest.find((paragraph) => paragraph.trim() !== ''), doc).toMatch(/^(\*\*For\*\*|For) /);
    }
  });

  it('docs/configuration.md lists every configuration variable with its default', () => {
    const configuration = read('docs/configuration.md');
    for (const [name, schema] of Object.entries(ConfigSchema.properties as Record<string, { default?: unknown }>)) {
      const row = configuration.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
      expect(row, `docs/configuration.md has no row for ${name}`).toBeDefined();
      if (schema.default !== undefined && schema.default !== '') expect(row, name).toContain(`\`${String(schema.default)}\``);
    }
  });

  it('docs/api.md lists every error code in its Errors table, with its status', () => {
    const api = read('docs/api.md');
    const errors = api.slice(api.indexOf('\n## Errors\n'), api.indexOf('\n## ', api.indexOf('\n## Errors\n') + 1));
    const rows = errors.split('\n').filter((line) => /^\| `[A-Z_]+`/.test(line));
    for (const ErrorClass of Object.values(Errors)) {
      const code = new ErrorClass().code as ErrorCode;
      const row = rows.find((line) => line.split('|')[1]!.includes(`\`${code}\``));
      expect(row, `docs/api.md has no row for ${code}`).toBeDefined();
      expect(row!.split('|')[2]!.trim(), code).toBe(String(errorDefinition(code).status));
    }
  });
});

describe('links', () => {
  const files = ['README.md', ...docs, 'bench/README.md'];
  const anchors = (path: string) => {
    const headings = read(path).replace(/```[\s\S]*?```/g, '').match(/^#{1,6} .*$/gm) ?? [];
    return new Set(
      headings.map((h) =>
        h
          .replace(/^#+ /, '')
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      ),
    );
  };

  it('go only to files of the repository, and to headings that exist', () => {
    for (const file of files) {
      const text = read(file).replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        expect(target, `${file}: ${target} leaves the repository`).not.toMatch(/^[a-z][a-z0-9+.-]*:/i);
        const [path, anchor] = target!.split('#');
        const resolved = path ? relative(root, join(root, dirname(file), path)) : file;
        expect(existsSync(join(root, resolved)), `${file}: ${target} names no file`).toBe(true);
        if (anchor) expect([...anchors(resolved)], `${file}: ${target} names no heading of ${resolved}`).toContain(anchor);
      }
    }
  });
});
