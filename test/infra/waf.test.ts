// The web application firewall in front of every region's load balancer
// (terraform/modules/region/waf.tf): on by default, the three AWS managed rule
// groups and a per-IP rate limit, the rules that inspect bodies counting only
// (the service's bodies are documents, up to gigabytes), an opt-out, and logs
// only when asked for, without the API key.
import { describe, expect, it } from 'vitest';
import { defaultOf, type Json } from './helpers.ts';
import { deploy, everyRegion, rootBlocks } from './deployments.ts';
import { Unknown } from './hcl-eval.ts';

/**
 * The rules of each group that inspect the request body (the AWS WAF
 * developer guide's tables of the core rule set and known bad inputs): they
 * would refuse documents, so they must count, not block.
 */
const bodyRules: Record<string, string[]> = {
  AWSManagedRulesCommonRuleSet: ['SizeRestrictions_BODY', 'CrossSiteScripting_BODY', 'GenericLFI_BODY', 'GenericRFI_BODY', 'EC2MetaDataSSRF_BODY'],
  AWSManagedRulesKnownBadInputsRuleSet: ['JavaDeserializationRCE_BODY', 'Log4JRCE_BODY'],
  AWSManagedRulesAmazonIpReputationList: [],
};
/** Web ACL capacity units of each rule (the developer guide); a web ACL past 1,500 costs more per request. */
const capacity: Record<string, number> = { AWSManagedRulesCommonRuleSet: 700, AWSManagedRulesKnownBadInputsRuleSet: 200, AWSManagedRulesAmazonIpReputationList: 25, rate: 2 };

const managedGroup = (rule: Json): Json | undefined => rule.statement[0].managed_rule_group_statement?.[0];

describe.each(everyRegion)('the WAF of %s', (_name, { plan: region, region: where, variant }) => {
  const acl = region.instance('aws_wafv2_web_acl', 'api', 0);
  const rules: Json[] = acl.rule;

  it('is a regional web ACL of its own region, associated with the load balancer, letting through what no rule blocks', () => {
    expect(acl).toMatchObject({ region: where, scope: 'REGIONAL', default_action: [{ allow: [{}] }] });
    const association = region.instance('aws_wafv2_web_acl_association', 'api', 0);
    expect(association.resource_arn).toEqual(new Unknown(`${region.prefix}aws_lb.api.arn`));
    expect(association.web_acl_arn).toEqual(new Unknown(`${region.prefix}aws_wafv2_web_acl.api[0].arn`));
  });

  it('limits each client IP first, then applies the three AWS managed groups, each rule with its own metric', () => {
    const [rate, ...managed] = [...rules].sort((a, b) => a.priority - b.priority);
    expect(new Set(rules.map((r) => r.priority)).size).toBe(rules.length);
    expect(rate.statement[0].rate_based_statement[0]).toEqual({ limit: region.variable('waf_rate_limit'), aggregate_key_type: 'IP' });
    expect(rate.action).toEqual([{ block: [{}] }]);
    expect(managed.map((r) => managedGroup(r)?.vendor_name)).toEqual(['AWS', 'AWS', 'AWS']);
    expect(managed.map((r) => managedGroup(r).name).sort()).toEqual(Object.keys(bodyRules).sort());
    for (const rule of managed) expect(rule.override_action, rule.name).toEqual([{ none: [{}] }]);
    const metrics = [...rules, acl].map((r) => r.visibility_config[0]);
    for (const metric of metrics) expect(metric).toMatchObject({ cloudwatch_metrics_enabled: true, sampled_requests_enabled: true });
    expect(new Set(metrics.map((m) => m.metric_name)).size).toBe(metrics.length);
  });

  it('counts, and never blocks on, the rules that inspect a body: uploads are documents of any content and size', () => {
    for (const rule of rules.filter(managedGroup)) {
      const group = managedGroup(rule);
      const overrides: Json[] = group.rule_action_override ?? [];
      expect(overrides.map((o) => o.name).sort(), group.name).toEqual([...bodyRules[group.name]!].sort());
      for (const override of overrides) expect(override.action_to_use, override.name).toEqual([{ count: [{}] }]);
    }
    // The rule that would refuse every body over 8 KB (an upload's chunk, a document) is among them.
    expect(rules.flatMap((r) => managedGroup(r)?.rule_action_override ?? []).map((o: Json) => o.name)).toContain('SizeRestrictions_BODY');
  });

  it('stays within the capacity a web ACL includes (1,500 WCUs)', () => {
    const used = rules.reduce((sum, rule) => sum + (managedGroup(rule) ? capacity[managedGroup(rule).name]! : capacity.rate!), 0);
    expect(used).toBeLessThanOrEqual(1500);
  });

  it('logs nothing by default; asked to, only what it blocked or counted, without the Authorization header', () => {
    expect(region.instances('aws_wafv2_web_acl_logging_configuration')).toHaveLength(0);
    expect(region.instances('aws_cloudwatch_log_group').filter((g) => g.address.includes('.waf'))).toHaveLength(0);
    const logged = variant({ waf_logging: true });
    const group = logged.instance('aws_cloudwatch_log_group', 'waf', 0);
    expect(group.name).toMatch(/^aws-waf-logs-/); // AWS WAF refuses any other name
    expect(group.retention_in_days).toBeGreaterThan(0);
    const logging = logged.instance('aws_wafv2_web_acl_logging_configuration', 'api', 0);
    expect(logging.log_destination_configs).toEqual([new Unknown(`${region.prefix}aws_cloudwatch_log_group.waf[0].arn`)]);
    expect(logging.redacted_fields).toEqual([{ single_header: [{ name: 'authorization' }] }]);
    const [filter] = logging.logging_filter;
    expect(filter.default_behavior).toBe('DROP');
    expect(filter.filter.map((f: Json) => f.behavior)).toEqual(['KEEP']);
    expect(filter.filter[0].condition.map((c: Json) => c.action_condition[0].action).sort()).toEqual(['BLOCK', 'COUNT']);
  });

  it('is gone, with its association and logs, when waf = false', () => {
    const off = variant({ waf: false, waf_logging: true });
    for (const type of ['aws_wafv2_web_acl', 'aws_wafv2_web_acl_association', 'aws_wafv2_web_acl_logging_configuration']) {
      expect(off.instances(type), type).toHaveLength(0);
    }
    expect(off.instances('aws_cloudwatch_log_group').filter((g) => g.address.includes('.waf'))).toHaveLength(0);
  });
});

describe('the WAF rate limit', () => {
  it("defaults to the app's own per-tenant quota over the rule's 5 minutes: no client the app would serve is cut off", () => {
    expect(rootBlocks.variable.waf_rate_limit.default).toBe(5 * Number(defaultOf('RATE_LIMIT_PER_MINUTE')));
  });

  it('refuses what AWS WAF would (under 10, fractions), and takes any whole number above', () => {
    expect(deploy({ waf_rate_limit: 9 }).failedValidations()).toEqual([expect.stringMatching(/^var\.waf_rate_limit:/)]);
    expect(deploy({ waf_rate_limit: 100.5 }).failedValidations()).toEqual([expect.stringMatching(/^var\.waf_rate_limit:/)]);
    expect(deploy({ waf_rate_limit: 10 }).failedValidations()).toEqual([]);
    expect(deploy({ waf_rate_limit: 2000 }).failedValidations()).toEqual([]);
  });
});
