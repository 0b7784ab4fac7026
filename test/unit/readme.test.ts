import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigSchema } from '../../src/config.ts';

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
});
