import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigSchema } from '../../src/config.ts';
import { Errors, errorDefinition, type ErrorCode } from '../../src/errors.ts';

// A newcomer reads the README, not config.ts: it must not fall behind.
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('starts with the two commands a newcomer runs', () => {
    const top = readme.split('\n').slice(0, 40).join('\n');
    expect(top).toContain('make dev');
    expect(top).toContain('make test');
  });

  it('lists every configuration variable with its default', () => {
    for (const [name, schema] of Object.entries(ConfigSchema.properties as Record<string, { default?: unknown }>)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
      expect(row, `README has no row for ${name}`).toBeDefined();
      if (schema.default !== undefined && schema.default !== '') expect(row, name).toContain(`\`${String(schema.default)}\``);
    }
  });

  it('lists every error code in the Errors table, with its status', () => {
    const rows = readme.split('\n').filter((line) => /^\| `[A-Z_]+`/.test(line));
    for (const ErrorClass of Object.values(Errors)) {
      const code = new ErrorClass().code as ErrorCode;
      const row = rows.find((line) => line.split('|')[1]!.includes(`\`${code}\``));
      expect(row, `README has no row for ${code}`).toBeDefined();
      expect(row!.split('|')[2]!.trim(), code).toBe(String(errorDefinition(code).status));
    }
  });
});
