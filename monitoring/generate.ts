// node monitoring/generate.ts: writes the PrometheusRule of the kustomize
// component k8s/components/monitoring from monitoring/rules.yml, the one
// source of the rules. test/monitoring/rules.test.ts fails when the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';

const root = new URL('..', import.meta.url);
export const RULES_FILE = 'monitoring/rules.yml';
export const PROMETHEUS_RULE_FILE = 'k8s/components/monitoring/prometheusrule.yaml';

/** The Prometheus Operator's form of a plain rules file: the same groups under `spec`. */
export function prometheusRule(rulesText: string): string {
  const { groups } = parse(rulesText) as { groups: unknown[] };
  const resource = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'docsvc', labels: { 'app.kubernetes.io/name': 'docsvc' } },
    spec: { groups },
  };
  return `# Generated from ${RULES_FILE} by \`node monitoring/generate.ts\`: edit that file, not this one.\n${stringify(resource, { lineWidth: 0 })}`;
}

if (import.meta.main) {
  const text = prometheusRule(readFileSync(new URL(RULES_FILE, root), 'utf8'));
  writeFileSync(new URL(PROMETHEUS_RULE_FILE, root), text);
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}
