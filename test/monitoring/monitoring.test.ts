// monitoring/ and k8s/components/monitoring: the rules pass promtool's own
// checks and unit tests, the PrometheusRule is the rules file, the scrape
// manifests select what k8s/ deploys, and every metric a rule or a panel
// names is exported by a running API, relay, consumer or lifecycle worker.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parser } from '@prometheus-io/lezer-promql';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parse as parseYaml } from 'yaml';
import { PROMETHEUS_RULE_FILE, RULES_FILE, prometheusRule } from '../../monitoring/generate.ts';
import { type Json, k8sManifests, kustomization, readText, readYaml, readYamlDocuments, root } from '../infra/helpers.ts';
import { isolatedStack, json as orderRequest, newOrder, type IsolatedStack } from '../orders/support.ts';
import { metricNames, ready, startProcess, until, type RunningProcess } from '../support/processes.ts';

/**
 * Metrics that come from elsewhere than the service's own processes:
 * kube-state-metrics (readiness and restarts, as the kubelet sees them).
 */
const FROM_ELSEWHERE = new Set(['kube_deployment_status_replicas_unavailable', 'kube_pod_container_status_restarts_total']);


const COMPONENT_DIR = 'k8s/components/monitoring';
/** `make test` fetches promtool into .tools/bin when the machine has none (Makefile, `promtool`). */
const PROMTOOL = existsSync(join(root, '.tools/bin/promtool')) ? join(root, '.tools/bin/promtool') : 'promtool';
const rules: { groups: { name: string; rules: Json[] }[] } = readYaml(RULES_FILE);
const allRules = rules.groups.flatMap((group) => group.rules);
const recorded = new Set(allRules.filter((rule) => rule.record).map((rule) => String(rule.record)));
const dashboard: Json = JSON.parse(readText('monitoring/grafana/docsvc.json'));
const panels: Json[] = dashboard.panels.filter((panel: Json) => panel.type !== 'row');

/** The metric names a PromQL expression selects, from the official PromQL grammar. */
function selectedMetrics(expr: string): string[] {
  // Grafana's variables are not PromQL: a range and a label value stand in for them.
  const promql = expr.replaceAll('$__rate_interval', '5m').replace(/\$\w+/g, 'x');
  const tree = parser.parse(promql);
  const names: string[] = [];
  let error: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) error ??= node.from;
      if (node.name !== 'VectorSelector') return;
      const identifier = node.node.getChild('Identifier');
      if (identifier) names.push(promql.slice(identifier.from, identifier.to));
    },
  });
  if (error !== undefined) throw new Error(`not PromQL at ${error}: ${expr}`);
  return names;
}

const ruleMetrics = new Map(allRules.map((rule) => [String(rule.alert ?? rule.record), selectedMetrics(rule.expr)]));
const panelMetrics = new Map(
  panels.map((panel) => [String(panel.title), panel.targets.flatMap((target: Json) => selectedMetrics(target.expr))]),
);

describe('the rules (monitoring/rules.yml)', () => {
  it('pass promtool check rules', () => {
    const output = execFileSync(PROMTOOL, ['check', 'rules', RULES_FILE], { cwd: root, encoding: 'utf8' });
    expect(output).toContain(`SUCCESS: ${allRules.length} rules found`);
  });

  it('pass their promtool unit tests (monitoring/rules.test.yml), which cover every alert', () => {
    const output = execFileSync(PROMTOOL, ['test', 'rules', 'monitoring/rules.test.yml'], { cwd: root, encoding: 'utf8' });
    expect(output).toContain('SUCCESS');
    const tests: Json = readYaml('monitoring/rules.test.yml');
    const tested = new Set<string>(
      tests.tests.flatMap((test: Json) =>
        test.alert_rule_test.filter((check: Json) => check.exp_alerts.length > 0).map((check: Json) => check.alertname),
      ),
    );
    const alerts = allRules.filter((rule) => rule.alert).map((rule) => String(rule.alert));
    expect([...tested].sort()).toEqual([...alerts].sort());
  });

  it('cover what the service needs watched', () => {
    const expressions = allRules.filter((rule) => rule.alert).map((rule) => String(rule.expr)).join('\n');
    for (const metric of [
      'route:http_5xx:ratio_rate5m',
      'slo:orders_post_slow:ratio_rate1h',
      'slo:orders_post_slow:ratio_rate5m',
      'slo:orders_post_slow:ratio_rate6h',
      'slo:orders_post_slow:ratio_rate30m',
      'outbox_oldest_pending_age_seconds',
      'order_events_dead_letters',
      'redis_circuit_open',
      'kube_deployment_status_replicas_unavailable',
      'kube_pod_container_status_restarts_total',
      'tombstone_oldest_overdue_seconds',
      'document_integrity_failures_total',
    ]) {
      expect(expressions, metric).toContain(metric);
    }
    // The latency objective is measured at a bucket boundary of its own (the API exports it: below).
    expect(readText(RULES_FILE)).toContain('le="0.3"');
  });

  it('are, word for word, the groups of the PrometheusRule (regenerate with node monitoring/generate.ts)', () => {
    expect(readText(PROMETHEUS_RULE_FILE)).toBe(prometheusRule(readText(RULES_FILE)));
    expect(parseYaml(readText(PROMETHEUS_RULE_FILE)).spec.groups).toEqual(rules.groups);
  });
});

describe('the kustomize component (k8s/components/monitoring)', () => {
  const component: Json = readYaml(`${COMPONENT_DIR}/kustomization.yaml`);
  const files = readdirSync(join(root, COMPONENT_DIR)).filter((name) => name !== 'kustomization.yaml').sort();
  const objects = files.flatMap((file) => readYamlDocuments(`${COMPONENT_DIR}/${file}`).map((doc) => ({ file, doc })));
  const models: Record<string, new (data: Json) => { validate(): void }> = {
    ServiceMonitor,
    PodMonitor,
    PrometheusRule,
  };
  const workloads = k8sManifests().map(({ doc }) => doc);
  const deployment = (component: string): Json =>
    workloads.find((d) => d.kind === 'Deployment' && d.metadata.labels['app.kubernetes.io/component'] === component);
  const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
    Object.entries(selector).every(([key, value]) => labels[key] === value);

  it('is a Component listing every file of its folder, and the default kustomization does not need it', () => {
    expect(component.kind).toBe('Component');
    expect(component.apiVersion).toBe('kustomize.config.k8s.io/v1alpha1');
    expect([...component.resources].sort()).toEqual(files);
    expect(kustomization.components).toBeUndefined();
    expect(JSON.stringify(kustomization)).not.toContain('components/monitoring');
  });

  it('validates against the Prometheus Operator schemas', () => {
    expect(objects.map(({ doc }) => doc.kind).sort()).toEqual(['PodMonitor', 'PrometheusRule', 'ServiceMonitor']);
    for (const { file, doc } of objects) {
      const Model = models[doc.kind];
      expect(Model, file).toBeDefined();
      expect(doc.apiVersion, file).toBe('monitoring.coreos.com/v1');
      if (Model) expect(() => new Model(doc).validate(), `${file}: ${doc.kind}`).not.toThrow();
    }
  });

  it('scrapes the API through its Service, on a port the Service names, at the path it serves', () => {
    const monitor = objects.find(({ doc }) => doc.kind === 'ServiceMonitor')!.doc;
    const service = workloads.find((doc) => doc.kind === 'Service');
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    const [endpoint] = monitor.spec.endpoints;
    expect(service.spec.ports.map((port: Json) => port.name)).toContain(endpoint.port);
    expect(endpoint.path).toBe('/metrics');
  });

  it('scrapes the relay and the consumer pods on their metrics port, and not the API pods', () => {
    const monitor = objects.find(({ doc }) => doc.kind === 'PodMonitor')!.doc;
    const [endpoint] = monitor.spec.podMetricsEndpoints;
    for (const name of ['relay', 'consumer', 'api']) {
      const pod = deployment(name).spec.template;
      expect(matches(monitor.spec.selector.matchLabels, pod.metadata.labels), name).toBe(true);
      const ports = pod.spec.containers.flatMap((container: Json) => container.ports.map((port: Json) => port.name));
      expect(ports.includes(endpoint.port), name).toBe(name !== 'api');
    }
    expect(endpoint.path).toBe('/metrics');
  });
});

describe('the dashboard (monitoring/grafana/docsvc.json)', () => {
  it('has a panel for each thing an operator looks at, each with a Prometheus query and a description', () => {
    const titles = panels.map((panel) => String(panel.title));
    for (const title of [
      'Requests per route',
      '5xx ratio per route',
      'Latency p95 per route',
      'Cache hit ratio per layer',
      'Outbox backlog',
      'Outbox oldest pending age',
      'Consumer outcomes',
      'Dead-letter queue depth',
      'Event-loop lag p99',
      'Memory',
    ]) {
      expect(titles).toContain(title);
    }
    for (const panel of panels) {
      expect(panel.description, panel.title).toBeTruthy();
      expect(panel.datasource.uid, panel.title).toBe('${datasource}');
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
    }
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
  });
});

describe('every metric a rule or a panel names', () => {
  let s: IsolatedStack;
  let running: RunningProcess[] = [];
  let exported = new Set<string>();
  let apiMetrics = '';

  beforeAll(async () => {
    s = await isolatedStack();
    const names = Object.fromEntries(Object.entries(s.names).map(([key, value]) => [key, String(value)]));
    // The lifecycle worker on a table and bucket that do not exist: it must not sweep the
    // shared bucket under other tests, and its metrics are declared whether its sweeps work or not.
    const nowhere = `monitoring-absent-${randomUUID().slice(0, 8)}`;
    running = await Promise.all([
      startProcess('api', names),
      startProcess('relay', { ...names, RELAY_GRACE_MS: '0', RELAY_INTERVAL_MS: '100' }),
      startProcess('order-consumer', { ...names, CONSUMER_WAIT_SECONDS: '1' }),
      startProcess('content-sweeper', { ...names, DOCUMENTS_TABLE: nowhere, DOCUMENTS_BUCKET: nowhere }),
    ]);
    await Promise.all(running.slice(0, 3).map((process) => ready(process)));
    await ready(running[3]!, 20_000, '/health/live');
    // Traffic, so that every labelled series has been created once. Retried while the API
    // sheds load (503 OVERLOADED while three processes start on two cores): both writes are idempotent.
    const [api] = running;
    const order = orderRequest(newOrder(1));
    const succeeds = (path: string, init?: RequestInit) =>
      until(async () => (await fetch(api!.url(path), init)).ok, 15_000, () => `${init?.method ?? 'GET'} ${path}:\n${api!.output()}`);
    await succeeds('/orders', { method: 'POST', headers: order.headers, body: order.payload });
    const id = `monitoring-${randomUUID()}`;
    await succeeds(`/documents/${id}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' });
    for (let i = 0; i < 2; i++) await succeeds(`/documents/${id}`);
    const texts = await Promise.all(running.map(async (process) => (await fetch(process.url('/metrics'))).text()));
    exported = new Set(texts.flatMap((text) => [...metricNames(text)]));
    apiMetrics = texts[0]!;
  });

  afterAll(async () => {
    await Promise.all(running.map((process) => process.stop()));
    s?.close();
  });

  const known = (metric: string) => exported.has(metric) || recorded.has(metric) || FROM_ELSEWHERE.has(metric);

  it('is exported by the API, the relay, the consumer or the lifecycle worker (or recorded by a rule, or from elsewhere)', () => {
    expect(exported.size).toBeGreaterThan(20);
    for (const [where, metrics] of [...ruleMetrics, ...panelMetrics]) {
      expect(metrics.length, where).toBeGreaterThan(0);
      for (const metric of metrics) expect(known(metric), `${where}: ${metric}`).toBe(true);
    }
    expect(apiMetrics).toMatch(/^http_request_duration_seconds_bucket\{le="0.3",route="\/orders",method="POST",status_code="201"\} \d+$/m);
  });

  it('leaves nothing stale in the allowlist: each entry is used, and none is exported by the service itself', () => {
    const used = new Set([...ruleMetrics.values(), ...panelMetrics.values()].flat());
    for (const metric of FROM_ELSEWHERE) {
      expect(used.has(metric), metric).toBe(true);
      expect(exported.has(metric), metric).toBe(false);
    }
  });
});
