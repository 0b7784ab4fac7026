// What the internet reaches through each region's load balancer: the routes
// the app really serves, split into the public API (forwarded) and the
// internal ones (/metrics and the probes, answered 404 by the load balancer
// itself), on every listener that forwards, in every region (deployments.ts).
// The route list comes from the app as built, so a new route fails this test
// until it is placed on one side.
import Fastify from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { appPlugin, serverOptions } from '../../src/app.ts';
import { testConfig } from '../support/app.ts';
import { type Json, k8sManifests, loadTerraform, regionModule } from './helpers.ts';
import { everyRegion } from './deployments.ts';
import { Unknown } from './hcl-eval.ts';
import type { Plan } from './plan.ts';

const tf = await loadTerraform(regionModule);
/** Scraped and probed inside the cluster; the load balancer's health check goes to the targets directly. */
const internal = ['/metrics', '/health/live', '/health/ready'];

/** An ALB path pattern: case-sensitive, `*` any run of characters, `?` one; matched on the path as sent, undecoded. */
function albMatches(pattern: string, path: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(path);
}

/** The paths a region's load balancer forwards to the API, by listener. */
function forwardedBy(region: Plan): Record<string, string[]> {
  const byListener: Record<string, string[]> = {};
  for (const { key, config } of region.instances('aws_lb_listener_rule')) {
    byListener[String(key)] = [...(byListener[String(key)] ?? []), ...config.condition.flatMap((c: Json) => c.path_pattern.flatMap((p: Json) => p.values))];
  }
  return byListener;
}
const matchesAny = (patterns: string[], path: string) => patterns.some((pattern) => albMatches(pattern, path));

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

describe.each(everyRegion)('the load balancer of %s', (_name, { plan: region, variant }) => {
  // Plain HTTP forwarded (to given CIDRs only): the same rules on both listeners.
  const listeners = { ...forwardedBy(region), ...Object.fromEntries(Object.entries(forwardedBy(variant({ plain_http: 'forward', plain_http_cidrs: ['198.51.100.0/24'] }))).map(([k, v]) => [`${k} (plain_http = forward)`, v])) };

  it('forwards on HTTPS alone by default, and on port 80 too only when plain HTTP is forwarded', () => {
    expect(Object.keys(listeners).sort()).toEqual(['http (plain_http = forward)', 'https', 'https (plain_http = forward)']);
    for (const paths of Object.values(listeners)) expect(paths).toEqual(listeners.https);
  });

  it('forwards every route of the app but the internal ones, and no internal one', () => {
    expect(served).toEqual(expect.arrayContaining([...internal, '/documents', '/orders', '/health', '/openapi.json']));
    for (const [listener, forwarded] of Object.entries(listeners)) {
      for (const route of served) {
        // A sample request path of the route: each parameter replaced by a value.
        const path = route.replace(/:\w+/g, 'x').replace(/\*$/, 'x');
        expect(matchesAny(forwarded, path), `${listener}: ${route} (as ${path})`).toBe(!internal.includes(route));
      }
    }
  });

  it('forwards nothing that the app could decode or fold into an internal route', () => {
    for (const path of ['/%6detrics', '/%6Detrics', '/Metrics', '//metrics', '/metrics/', '/./metrics', '/health/ready/', '/health%2Fready', '/%68ealth/live']) {
      expect(matchesAny(listeners.https!, path), path).toBe(false);
    }
  });

  it('answers what it does not forward itself, with a 404 and no body from the app', () => {
    const [https] = region.instance('aws_lb_listener', 'https').default_action;
    expect(https.type).toBe('fixed-response');
    expect(https.fixed_response[0]).toMatchObject({ status_code: '404', content_type: 'application/json' });
    for (const { address, config } of region.instances('aws_lb_listener_rule')) {
      expect(config.action, address).toEqual([{ type: 'forward', target_group_arn: new Unknown(`${region.prefix}aws_lb_target_group.api.arn`) }]);
      expect(config.listener_arn, address).toEqual(new Unknown(`${region.prefix}aws_lb_listener.https.arn`));
      // At most five path values per rule (an ALB limit).
      expect(config.condition[0].path_pattern[0].values.length).toBeLessThanOrEqual(5);
    }
  });

  it("health-checks /health/ready on the API's NodePort, which serves it, past the listener rules", () => {
    const [health] = region.instance('aws_lb_target_group', 'api').health_check;
    expect(health).toMatchObject({ path: '/health/ready', port: 'traffic-port' });
    expect(served).toContain(health.path);
    const service = k8sManifests().find(({ doc }) => doc.kind === 'Service')?.doc;
    expect(service.spec.ports.map((p: Json) => p.targetPort)).toEqual(['http']);
  });
});

describe('the listener rules, as written', () => {
  it('forward the allow-list (local.public_paths) of the module every region is made of', () => {
    const rules = tf.resource.aws_lb_listener_rule as Record<string, Json>;
    expect(Object.keys(rules).sort()).toEqual(['public_api', 'public_meta']);
    for (const [name, rule] of Object.entries(rules)) {
      expect(rule.for_each, name).toBe('${toset(local.forwarding_listeners)}');
      expect(rule.condition[0].path_pattern[0].values, name).toMatch(/^\$\{local\.public_paths\.\w+\}$/);
    }
    expect(tf.locals.forwarding_listeners).toBe('${var.plain_http == "forward" ? ["https", "http"] : ["https"]}');
  });
});
