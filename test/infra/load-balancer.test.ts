// What the internet reaches through the load balancer: the routes the app
// really serves, split into the public API (forwarded) and the internal ones
// (/metrics and the probes, answered 404 by the load balancer itself). The
// route list comes from the app as built, so a new route fails this test
// until it is placed on one side.
import Fastify from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { appPlugin, serverOptions } from '../../src/app.ts';
import { testConfig } from '../support/app.ts';
import { blockOf, type Json, k8sManifests, loadTerraform, resourceOf } from './helpers.ts';

const tf = await loadTerraform();
/** Scraped and probed inside the cluster; the load balancer's health check goes to the targets directly. */
const internal = ['/metrics', '/health/live', '/health/ready'];

/** An ALB path pattern: case-sensitive, `*` any run of characters, `?` one; matched on the path as sent, undecoded. */
function albMatches(pattern: string, path: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(path);
}

const forwarded: string[] = [
  ...resourceOf(tf, 'aws_lb_listener_rule', 'public_api').condition,
  ...resourceOf(tf, 'aws_lb_listener_rule', 'public_meta').condition,
].flatMap((condition: Json) => {
  const values = blockOf(condition, 'path_pattern').values as string;
  const local = /^\$\{local\.public_paths\.(\w+)\}$/.exec(values)?.[1] ?? '';
  return tf.locals.public_paths[local] as string[];
});
const isForwarded = (path: string) => forwarded.some((pattern) => albMatches(pattern, path));

let served: string[] = [];

beforeAll(async () => {
  const app = Fastify(serverOptions(testConfig()));
  const urls = new Set<string>();
  app.addHook('onRoute', (route) => {
    urls.add(route.url);
  });
  await app.register(appPlugin, { config: testConfig() });
  await app.ready();
  await app.close();
  served = [...urls].sort();
});

describe('the load balancer', () => {
  it('forwards every route of the app but the internal ones, and no internal one', () => {
    expect(served).toEqual(expect.arrayContaining([...internal, '/documents', '/orders', '/health', '/openapi.json']));
    for (const route of served) {
      // A sample request path of the route: each parameter replaced by a value.
      const path = route.replace(/:\w+/g, 'x').replace(/\*$/, 'x');
      expect(isForwarded(path), `${route} (as ${path})`).toBe(!internal.includes(route));
    }
  });

  it('forwards nothing that the app could decode or fold into an internal route', () => {
    for (const path of ['/%6detrics', '/%6Detrics', '/Metrics', '//metrics', '/metrics/', '/./metrics', '/health/ready/', '/health%2Fready', '/%68ealth/live']) {
      expect(isForwarded(path), path).toBe(false);
    }
  });

  it('answers what it does not forward itself, with a 404 and no body from the app', () => {
    const https = blockOf(resourceOf(tf, 'aws_lb_listener', 'https'), 'default_action');
    expect(https.type).toBe('fixed-response');
    expect(blockOf(https, 'fixed_response')).toMatchObject({ status_code: '404', content_type: 'application/json' });
    for (const name of ['public_api', 'public_meta']) {
      const rule = resourceOf(tf, 'aws_lb_listener_rule', name);
      expect(rule.for_each, name).toBe('${toset(local.forwarding_listeners)}');
      expect(blockOf(rule, 'action')).toEqual({ type: 'forward', target_group_arn: '${aws_lb_target_group.api.arn}' });
    }
    expect(tf.locals.forwarding_listeners).toBe('${var.plain_http == "forward" ? ["https", "http"] : ["https"]}');
    // At most five path values per rule (an ALB limit).
    for (const paths of Object.values(tf.locals.public_paths as Record<string, string[]>)) expect(paths.length).toBeLessThanOrEqual(5);
  });

  it("health-checks /health/ready on the API's NodePort, which serves it, past the listener rules", () => {
    const health = blockOf(resourceOf(tf, 'aws_lb_target_group', 'api'), 'health_check');
    expect(health).toMatchObject({ path: '/health/ready', port: 'traffic-port' });
    expect(served).toContain(health.path);
    const service = k8sManifests().find(({ doc }) => doc.kind === 'Service')?.doc;
    expect(service.spec.ports.map((p: Json) => p.targetPort)).toEqual(['http']);
  });
});
