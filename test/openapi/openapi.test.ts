// The OpenAPI document a client generator and a linter see: spectral with
// spectral:oas and the OWASP API Security ruleset (.spectral.yaml) finds
// nothing, and it says what the issue asked for. The generated types are
// checked by client.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { boundedLength } from '../../src/http/openapi.ts';
import { servedDocument } from './document.ts';

const root = new URL('../../', import.meta.url).pathname;
let document: Record<string, any>;
let dir: string;

type Operation = { method: string; path: string; operation: Record<string, any> };
let operations: Operation[] = [];

beforeAll(async () => {
  document = await servedDocument();
  dir = mkdtempSync(join(tmpdir(), 'docsvc-openapi-'));
  operations = Object.entries(document.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => ['get', 'head', 'post', 'put', 'delete', 'patch'].includes(method))
      .map(([method, operation]) => ({ method, path, operation })),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('spectral lint of the served document', () => {
  it('finds no error, warning, information or hint with spectral:oas and the OWASP ruleset', () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(document));
    const output = execFileSync(
      `${root}node_modules/.bin/spectral`,
      ['lint', '--ruleset', `${root}.spectral.yaml`, '--format', 'json', '--fail-severity', 'hint', '--quiet', file],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(output || '[]')).toEqual([]);
  });

  it('uses a ruleset in which every rule turned off says why, just above it', () => {
    const lines = readFileSync(`${root}.spectral.yaml`, 'utf8').split('\n');
    const ruleset = parseYaml(lines.join('\n'));
    expect(ruleset.extends).toEqual(['spectral:oas', '@stoplight/spectral-owasp-ruleset']);
    const offs = lines.map((line, index) => ({ line, index })).filter(({ line }) => /:\s*off\s*$/.test(line));
    expect(offs.length).toBeGreaterThan(0);
    for (const { line, index } of offs) {
      // The reason is the comment block right above the rule, or above the first rule of its group.
      let above = index - 1;
      while (above >= 0 && /:\s*off\s*$/.test(lines[above]!)) above--;
      expect(lines[above]!.trim().startsWith('#'), `no reason above: ${line.trim()}`).toBe(true);
    }
  });
});

describe('what the document says', () => {
  it('gives every operation a unique operationId, a summary, a description and a declared tag', () => {
    const tags = new Set((document.tags as { name: string }[]).map((tag) => tag.name));
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { method, path, operation } of operations) {
      const where = `${method} ${path}`;
      expect(operation.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(operation.summary, where).toBeTruthy();
      expect(operation.description, where).toBeTruthy();
      for (const tag of operation.tags) expect(tags.has(tag), `${where}: ${tag}`).toBe(true);
    }
  });

  it('declares the document bodies as bytes of any media type, and lists HEAD', () => {
    for (const [path, method] of [['/documents', 'post'], ['/documents/{id}', 'put']] as const) {
      const body = document.paths[path][method].requestBody;
      expect(body.content['*/*'].schema).toMatchObject({ type: 'string', format: 'binary' });
    }
    expect(document.paths['/documents/{id}'].head.operationId).toBe('headDocument');
  });

  it('marks the probes, the metrics and this document as needing no key, and everything else as needing one', () => {
    expect(document.security).toEqual([{ apiKey: [] }]);
    const publicPaths = ['/health', '/health/live', '/health/ready', '/metrics', '/openapi.json'];
    for (const { method, path, operation } of operations) {
      if (publicPaths.includes(path)) expect(operation.security, `${method} ${path}`).toEqual([]);
      else {
        expect(operation.security, `${method} ${path}`).toBeUndefined();
        expect(operation.responses['401'], `${method} ${path}`).toBeDefined();
      }
    }
  });

  it('declares the headers the service reads and sends', () => {
    const parameters = (path: string, method: string) =>
      (document.paths[path][method].parameters as { in: string; name: string }[]).filter((p) => p.in === 'header').map((p) => p.name);
    expect(parameters('/orders', 'post')).toEqual(expect.arrayContaining(['idempotency-key', 'x-request-id', 'traceparent']));
    expect(parameters('/documents', 'post')).toEqual(expect.arrayContaining(['idempotency-key', 'content-type', 'content-digest', 'repr-digest']));
    expect(parameters('/documents/{id}', 'get')).toEqual(expect.arrayContaining(['if-none-match', 'range', 'if-range']));

    const headers = (path: string, method: string, status: string) => Object.keys(document.paths[path][method].responses[status].headers);
    expect(headers('/orders', 'post', '201')).toEqual(expect.arrayContaining(['Location', 'Idempotent-Replayed', 'RateLimit', 'RateLimit-Policy', 'X-Request-Id']));
    expect(headers('/orders', 'post', '429')).toEqual(expect.arrayContaining(['Retry-After', 'RateLimit']));
    expect(headers('/orders', 'post', '503')).toContain('Retry-After');
    expect(headers('/documents/{id}', 'get', '200')).toEqual(expect.arrayContaining(['ETag', 'Cache-Status', 'Repr-Digest', 'Accept-Ranges']));
    expect(headers('/documents/{id}', 'get', '206')).toContain('Content-Range');
    expect(headers('/documents/{id}', 'get', '401')).toContain('WWW-Authenticate');
    expect(document.paths['/orders'].post.responses['400'].content).toHaveProperty(['application/problem+json']);
  });

  it('writes out the length a bounded pattern implies, and nothing for an unbounded one', () => {
    expect(boundedLength('^CUST-[0-9]{8}$')).toBe(13);
    expect(boundedLength('^[A-Z0-9][A-Z0-9-]{2,31}$')).toBe(32);
    expect(boundedLength('^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')).toBe(36);
    expect(boundedLength('^\\.a?b$')).toBe(3);
    for (const unbounded of ['^[A-Z][A-Z0-9_]*$', '^a+$', '^(a|b)$', 'abc', '^a{2,}$']) expect(boundedLength(unbounded), unbounded).toBeUndefined();
    const body = document.paths['/orders'].post.requestBody.content['application/json'].schema;
    expect(body.properties.customerId).toMatchObject({ pattern: '^CUST-[0-9]{8}$', maxLength: 13 });
    expect(body.properties.items.items.properties.quantity).toMatchObject({ minimum: 1, maximum: 100, format: 'int32' });
  });

  it('bounds every string and integer parameter', () => {
    for (const { method, path, operation } of operations) {
      for (const parameter of operation.parameters ?? []) {
        const schema = parameter.schema;
        const where = `${method} ${path} ${parameter.in} ${parameter.name}`;
        // The one exception, by contract (see .spectral.yaml): a malformed order id is a 404.
        if (path === '/orders/{orderId}' && parameter.name === 'orderId') continue;
        if (schema.type === 'string') expect(schema.maxLength ?? schema.enum ?? schema.const, where).toBeDefined();
        if (schema.type === 'integer') expect([schema.minimum, schema.maximum, schema.format].every((v) => v !== undefined), where).toBe(true);
      }
    }
  });
});
