// docker-compose.yml: valid against the compose schema (dclint ships it), lint
// clean, and wired the way `docker compose up` needs: LocalStack and Redis
// healthy, then the one-shot bootstrap, then the API, relay and consumer.
import { join } from 'node:path';
import { DCLinter } from 'dclint';
import { describe, expect, it } from 'vitest';
import { entryPoints, type Json, readText, readYaml, root, routes } from './helpers.ts';

const compose = readYaml('docker-compose.yml');
const services: Record<string, Json> = compose.services;
const appServices = ['api', 'relay', 'consumer'] as const;
const imageServices = [...appServices, 'bootstrap'] as const;

describe('docker-compose.yml', () => {
  it('validates against the compose schema and passes every dclint rule', () => {
    // No rule configured = every rule on, at its default level.
    const linter = new DCLinter({ rules: {}, quiet: true, debug: false, exclude: [] });
    const [result, ...others] = linter.lintFiles([join(root, 'docker-compose.yml')], false);
    expect(others).toHaveLength(0);
    expect(result?.messages).toEqual([]);
  });

  it('has the app services, the bootstrap, LocalStack and Redis', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'bootstrap', 'consumer', 'localstack', 'redis', 'relay']);
  });

  it('pins LocalStack to the last image without an auth token, and says why', () => {
    expect(services.localstack.image).toBe('localstack/localstack:4.14.0');
    const source = readText('docker-compose.yml');
    const comment = source.slice(0, source.indexOf('localstack/localstack:4.14.0'));
    const why = comment.slice(comment.lastIndexOf('localstack:')).replace(/\s*#\s*/g, ' ');
    expect(why).toMatch(/last .*without an auth token/);
    expect(services.localstack.environment.SERVICES.split(',').sort()).toEqual(['dynamodb', 's3', 'sns', 'sqs']);
    expect(services.redis.image).toBe('redis:7-alpine');
  });

  it('builds one image that every process of the service runs by its command', () => {
    const images = new Set(imageServices.map((name) => services[name].image));
    expect(images.size).toBe(1);
    expect(imageServices.filter((name) => services[name].build !== undefined)).toEqual(['api']);
    for (const name of imageServices) expect(services[name].command).toEqual(['node', entryPoints[name]]);
  });

  it('health-checks every long-running service, on a route the process serves', () => {
    for (const name of ['api', 'relay', 'consumer', 'localstack', 'redis']) {
      expect(services[name].healthcheck?.test, name).toBeDefined();
    }
    for (const name of appServices) {
      const test = services[name].healthcheck.test.join(' ');
      const url = /http:\/\/127\.0\.0\.1:(\d+)(\/[\w/.]*)/.exec(test);
      const env = services[name].environment;
      expect(url?.[1], name).toBe(name === 'api' ? env.PORT : env.METRICS_PORT);
      expect(name === 'api' ? routes.api : routes.worker).toContain(url?.[2]);
    }
  });

  it('starts the bootstrap once LocalStack is healthy, and the app once the bootstrap has succeeded', () => {
    expect(services.bootstrap.depends_on).toEqual({ localstack: { condition: 'service_healthy' } });
    expect(services.bootstrap.restart).toBe('no');
    for (const name of appServices) {
      expect(services[name].depends_on, name).toEqual({
        bootstrap: { condition: 'service_completed_successfully' },
        localstack: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
    }
  });

  it('publishes the API on 3000, on the loopback interface only', () => {
    expect(services.api.ports).toEqual([`127.0.0.1:3000:${services.api.environment.PORT}`]);
    for (const name of ['relay', 'consumer', 'bootstrap', 'redis']) expect(services[name].ports, name).toBeUndefined();
  });

  it('runs the app containers as hardened as on Kubernetes', () => {
    for (const name of imageServices) {
      expect(services[name].read_only, name).toBe(true);
      expect(services[name].tmpfs, name).toEqual(['/tmp']);
      expect(services[name].cap_drop, name).toEqual(['ALL']);
    }
  });

  it('gives the app longer to stop than its own shutdown deadline', () => {
    for (const name of appServices) {
      const grace = /^(\d+)s$/.exec(services[name].stop_grace_period ?? '')?.[1];
      expect(Number(grace) * 1000, name).toBeGreaterThan(Number(services[name].environment.SHUTDOWN_TIMEOUT_MS));
    }
  });
});
