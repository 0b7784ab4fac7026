import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.ts';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

describe('conventions of every endpoint', () => {
  it('echoes a well-formed X-Request-Id and replaces a malformed one', async () => {
    const echoed = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'abc.DEF_123-x' } });
    expect(echoed.headers['x-request-id']).toBe('abc.DEF_123-x');
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '']) {
      const replaced = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': bad } });
      expect(replaced.headers['x-request-id']).not.toBe(bad);
      expect(replaced.headers['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    }
  });

  it('puts the request id into problem bodies', async () => {
    const response = await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': 'trace-1' } });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', requestId: 'trace-1', status: 404 });
  });

  it('answers a wrong method on a known route with 405 and Allow', async () => {
    const response = await app.inject({ method: 'PATCH', url: '/documents/abc' });
    expect(response.statusCode).toBe(405);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().code).toBe('METHOD_NOT_ALLOWED');
    expect(String(response.headers.allow).split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
    const onCollection = await app.inject({ method: 'DELETE', url: '/documents' });
    expect(onCollection.statusCode).toBe(405);
    expect(onCollection.headers.allow).toContain('POST');
  });

  it('answers QUERY, a method of HTTP the routes do not take, with 405 and Allow, with or without a Content-Type', async () => {
    for (const headers of [{}, { 'content-type': 'application/json' }]) {
      const response = await app.inject({ method: 'QUERY' as 'GET', url: '/documents/abc', headers, payload: headers['content-type'] ? '{}' : undefined });
      expect(response.statusCode, response.body).toBe(405);
      expect(response.json().code).toBe('METHOD_NOT_ALLOWED');
      expect(String(response.headers.allow).split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
    }
    const unknownPath = await app.inject({ method: 'QUERY' as 'GET', url: '/nowhere' });
    expect(unknownPath.statusCode).toBe(404);
  });

  it('answers a method no route of the server implements (WebDAV) with 501 on any path', async () => {
    for (const url of ['/documents/abc', '/nowhere']) {
      const response = await app.inject({ method: 'PROPFIND' as 'GET', url });
      expect(response.statusCode, url).toBe(501);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'NOT_IMPLEMENTED', status: 501 });
      expect(response.headers.allow).toBeUndefined();
    }
  });

  it('serves liveness, readiness and health', async () => {
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toEqual({ status: 'healthy', storage: 'ok', cache: 'ok', events: 'ok' });
  });

  it('publishes an OpenAPI 3 document of every route, from the validating schemas', async () => {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const spec = response.json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/documents', '/documents/{id}', '/documents/{id}/metadata', '/health', '/health/live', '/health/ready']),
    );
    expect(Object.keys(spec.paths['/documents/{id}'])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    const idParam = spec.paths['/documents/{id}'].get.parameters.find((p: { name: string }) => p.name === 'id');
    expect(idParam.schema.pattern).toBe('^[A-Za-z0-9_-]{1,128}$');
    expect(spec.components.schemas.Problem).toBeDefined();
  });

  it('exposes Prometheus metrics: latency by route, cache lookups, replays, process defaults', async () => {
    await app.inject({ method: 'GET', url: '/health/live' });
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toMatch(/http_request_duration_seconds_bucket\{.*route="\/health\/live".*method="GET".*status_code="200"/);
    expect(response.body).toContain('# TYPE document_cache_lookups_total counter');
    expect(response.body).toContain('# TYPE idempotent_replays_total counter');
    expect(response.body).toContain('process_cpu_seconds_total');
  });

  it('sends security headers and never a stack trace', async () => {
    const response = await app.inject({ method: 'GET', url: '/documents/x%00y' });
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.body).not.toMatch(/\bat .+:\d+:\d+/);
  });
});
