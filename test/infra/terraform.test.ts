// terraform/: every file parses, and the security properties hold in what
// it would create (no terraform binary or AWS account needed): the shared
// part (tables, orders, image repository) once, and the defaults a security
// review passed (docs/deploy.md) in every region, the primary of one
// region and both regions of two, each expanded offline (deployments.ts).
// The per-component IAM policies are derived from the code in iam.test.ts,
// the load balancer's public routes from the app in load-balancer.test.ts.
import { describe, expect, it } from 'vitest';
import { Unknown } from './hcl-eval.ts';
import { blockOf, dataOf, exampleAccountId, type Json, loadTerraform, regionModule, resourceOf } from './helpers.ts';
import { ADMIN_CIDRS, PRIMARY, SECONDARY, certificate, deploy, everyRegion, one, regionsOf, two, twoRegionValues } from './deployments.ts';

const tf = await loadTerraform();
const mod = await loadTerraform(regionModule);
const resources = (type: string): Record<string, Json> => tf.resource[type] ?? {};
const address = (value: unknown) => (value instanceof Unknown ? value.address : value);
/** Where secrets come from: an output naming one of these hands out the Redis token. */
const secretSources = /random_password|secret_string|auth_token/;

/** Every value a plan's outputs hold, flattened: strings, and what only apply knows by its address. */
function leaves(value: unknown): unknown[] {
  if (value instanceof Unknown) return [value.address];
  if (Array.isArray(value)) return value.flatMap(leaves);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(leaves);
  return [value];
}

describe('terraform files', () => {
  it('parses every .tf file, of the root and of the region module', () => {
    expect(Object.keys(tf.files).length).toBeGreaterThanOrEqual(5);
    for (const config of [tf, mod]) {
      for (const [file, parsed] of Object.entries(config.files)) expect(Object.keys(parsed), file).not.toHaveLength(0);
    }
  });

  it('pins terraform, the providers and the modules', () => {
    // versions.tf's block; backend.tf's holds the backend alone (test/infra/pins.test.ts).
    const settings = tf.terraform.filter((block) => block.backend === undefined);
    expect(settings).toHaveLength(1);
    expect(settings[0].required_version).toMatch(/^>= ?1\.\d+/);
    const providers = blockOf(settings[0], 'required_providers');
    expect(providers.aws).toEqual({ source: 'hashicorp/aws', version: expect.stringMatching(/^6\.\d+\.\d+$/) });
    expect(providers.random).toEqual({ source: 'hashicorp/random', version: expect.stringMatching(/^3\.\d+\.\d+$/) });
    // Every provider a resource uses is declared with a version (the module's come from the root).
    const used = new Set([...Object.keys(tf.resource), ...Object.keys(mod.resource)].map((type) => type.split('_')[0] ?? type));
    for (const provider of used) expect(providers[provider]?.version, provider).toBeTypeOf('string');
    expect(Object.keys(blockOf(mod.terraform[0], 'required_providers')).sort()).toEqual(['aws', 'random']);

    expect(mod.module.vpc).toMatchObject({ source: 'terraform-aws-modules/vpc/aws', version: expect.stringMatching(/^6\.\d+\.\d+$/) });
    expect(mod.module.eks).toMatchObject({ source: 'terraform-aws-modules/eks/aws', version: expect.stringMatching(/^21\.\d+\.\d+$/) });
    // Registry modules are pinned exactly (pins.test.ts); a module of this repository (./modules/...) has no version.
    for (const [name, module] of [...Object.entries(tf.module), ...Object.entries(mod.module)]) {
      if (!String(module.source).startsWith('./')) expect(module.version, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('describes and types every variable, and defaults all but what only the operator can decide', () => {
    for (const [name, variable] of [...Object.entries(tf.variable), ...Object.entries(mod.variable)]) {
      expect(variable.description, name).toMatch(/\w{3,}/);
      expect(variable.type, name).toBeTypeOf('string');
    }
    // Who may run kubectl, and the TLS certificate of the API's domain: no default is safe.
    const required = Object.entries(tf.variable).filter(([, v]) => !('default' in v)).map(([name]) => name);
    expect(required.sort()).toEqual(['admin_cidrs', 'certificate_arn']);
    // The region module takes every setting from the root, which defaults them once.
    for (const [name, variable] of Object.entries(mod.variable)) expect('default' in variable, name).toBe(false);
  });

  it('refuses the whole internet for kubectl and for plain HTTP, and anything but an ACM certificate of the region it is for', () => {
    expect(one.failedValidations()).toEqual([]);
    expect(two.failedValidations()).toEqual([]);
    for (const name of ['admin_cidrs', 'plain_http_cidrs']) {
      for (const cidrs of [['0.0.0.0/0'], ['::/0'], ['203.0.113.7/32', '0.0.0.0/0'], ['not a cidr']]) {
        expect(deploy({ [name]: cidrs }).failedValidations(), `${name} = ${cidrs}`).toEqual([expect.stringMatching(new RegExp(`^var\\.${name}: .*not the whole internet`))]);
      }
    }
    // No private-only endpoint: nothing here (no VPN, no bastion) would reach it.
    expect(deploy({ admin_cidrs: [] }).failedValidations()).toEqual([expect.stringMatching(/^var\.admin_cidrs: At least one CIDR/)]);
    expect(deploy({ certificate_arn: 'arn:aws:iam::123456789012:server-certificate/x' }).failedValidations()).toEqual([expect.stringMatching(/^var\.certificate_arn: /)]);
    // A further region's certificate must be of that region (ACM certificates are regional).
    expect(deploy({ ...twoRegionValues, certificate_arns: { [SECONDARY]: certificate(PRIMARY) } }).failedValidations()).toEqual([
      expect.stringMatching(/^var\.certificate_arns: /),
    ]);
  });

  it('describes every output, exposes the load balancer DNS name, and hands out no secret', () => {
    for (const [name, output] of [...Object.entries(tf.output), ...Object.entries(mod.output)]) expect(output.description, name).toMatch(/\w{3,}/);
    expect(address(one.output('load_balancer_dns_name'))).toBe('module.region["primary"].aws_lb.api.dns_name');
    expect(tf.output.ecr_repository_url.value).toBe('${aws_ecr_repository.app.repository_url}');
    expect(String(one.output('api_url'))).toMatch(/^https:\/\//);
    // As written, in the root and in the region module...
    for (const [name, output] of [...Object.entries(tf.output), ...Object.entries(mod.output)]) {
      expect(JSON.stringify(output.value), name).not.toMatch(secretSources);
      expect(output.sensitive, name).toBeUndefined(); // nothing to hide
    }
    // ...and as evaluated, through the module's outputs, with one region and with two.
    for (const plan of [one, two]) {
      for (const name of Object.keys(tf.output)) {
        for (const leaf of leaves(plan.output(name))) {
          expect(String(leaf), name).not.toMatch(secretSources);
          expect(String(leaf), name).not.toMatch(/rediss?:\/\/[^/@]*@/); // a password in a URL
        }
      }
    }
    expect(tf.output).not.toHaveProperty('region_redis_urls');
  });
});

describe('one region (the default)', () => {
  it('deploys the primary alone, as modules/region under the key "primary"', () => {
    expect(one.moduleInstances('region').map(({ key }) => key)).toEqual(['primary']);
    expect(two.moduleInstances('region').map(({ key }) => key)).toEqual(['primary', SECONDARY]);
    expect(Object.keys(regionsOf(two))).toEqual([PRIMARY, SECONDARY]);
  });
});

describe.each(everyRegion)('%s', (_name, { plan: region, region: where, variant: withValues }) => {
  const variant = (_where: string, values: Record<string, unknown>) => withValues(values);
  const eks: Json = region.moduleArguments('eks')[0]!.args;
  const vpc: Json = region.moduleArguments('vpc')[0]!.args;

  describe('network and cluster', () => {
    it('spans at least two AZs with public and private subnets, and NAT for the private ones', () => {
      const azs = /^\$\{slice\(data\.aws_availability_zones\.available\.names, (\d+), (\d+)\)\}$/.exec(mod.locals.azs);
      expect(Number(azs?.[2]) - Number(azs?.[1])).toBeGreaterThanOrEqual(2);
      expect(region.instance('aws_availability_zones', 'available', undefined, 'data').region).toBe(where);
      expect(mod.module.vpc.private_subnets).toMatch(/local\.azs/);
      expect(mod.module.vpc.public_subnets).toMatch(/local\.azs/);
      expect(vpc).toMatchObject({ region: where, enable_nat_gateway: true });
    });

    it('runs a managed node group in the private subnets, with the Pod Identity agent and metrics-server', () => {
      expect(eks.region).toBe(where);
      expect(address(eks.subnet_ids)).toBe(`${region.prefix}module.vpc.private_subnets`);
      expect(address(eks.eks_managed_node_groups.default.subnet_ids)).toBe(`${region.prefix}module.vpc.private_subnets`);
      expect(eks.addons).toHaveProperty('eks-pod-identity-agent');
      expect(eks.addons).toHaveProperty('metrics-server'); // the API's HPA needs it
    });

    it('opens the EKS API endpoint only to the operator CIDRs', () => {
      expect(eks).toMatchObject({ endpoint_private_access: true, endpoint_public_access: true, endpoint_public_access_cidrs: ADMIN_CIDRS });
    });

    it('enforces the NetworkPolicies of k8s/ (the VPC CNI only does when told)', () => {
      expect(JSON.parse(eks.addons['vpc-cni'].configuration_values)).toEqual({ enableNetworkPolicy: 'true' });
    });

    it('encrypts the nodes root volumes, and keeps pods off the node role through IMDS', () => {
      const group = eks.eks_managed_node_groups.default;
      const mappings = Object.values(group.block_device_mappings as Record<string, Json>);
      expect(mappings).toHaveLength(1);
      expect(mappings[0]).toMatchObject({ device_name: '/dev/xvda', ebs: { encrypted: true, volume_type: 'gp3', delete_on_termination: true } });
      expect(group.metadata_options).toMatchObject({ http_tokens: 'required', http_put_response_hop_limit: 1 });
    });

    it('records VPC flow logs when asked, and only then', () => {
      const flowLogs = ['enable_flow_log', 'create_flow_log_cloudwatch_log_group', 'create_flow_log_cloudwatch_iam_role'];
      expect(tf.variable.vpc_flow_logs.default).toBe(false);
      for (const input of flowLogs) expect(vpc[input], input).toBe(false);
      const on = variant(where, { vpc_flow_logs: true }).moduleArguments('vpc')[0]!.args;
      for (const input of flowLogs) expect(on[input], input).toBe(true);
      expect(on.flow_log_cloudwatch_log_group_retention_in_days).toBeGreaterThan(0);
    });

    it('places every regional resource in this region (IAM, CloudFront and random are global)', () => {
      const placed = region.resources().filter(({ address: a }) => !/\.(aws_iam_|aws_cloudfront_|random_)/.test(a));
      expect(placed.length).toBeGreaterThan(20);
      for (const { address: a, config } of placed) expect(config.region, a).toBe(where);
    });
  });

  describe('load balancer', () => {
    const nodeSecurityGroup = `${region.prefix}module.eks.node_security_group_id`;

    it('is an internet-facing ALB in the public subnets, dropping invalid headers', () => {
      const lb = region.instance('aws_lb', 'api');
      expect(lb).toMatchObject({ load_balancer_type: 'application', internal: false, drop_invalid_header_fields: true });
      expect(address(lb.subnets)).toBe(`${region.prefix}module.vpc.public_subnets`);
    });

    it('is protected from deletion, unless deletion_protection is turned off to tear down', () => {
      expect(tf.variable.deletion_protection.default).toBe(true);
      expect(region.instance('aws_lb', 'api').enable_deletion_protection).toBe(true);
      expect(variant(where, { deletion_protection: false }).instance('aws_lb', 'api').enable_deletion_protection).toBe(false);
    });

    it('forwards to the NodePort on the node group instances, health-checked on /health/ready', () => {
      const group = region.instance('aws_lb_target_group', 'api');
      expect(group).toMatchObject({ target_type: 'instance', port: tf.variable.node_port.default, protocol: 'HTTP' });
      expect(group.health_check[0]).toMatchObject({ path: '/health/ready', port: 'traffic-port', matcher: '200' });
      const attachment = region.instance('aws_autoscaling_attachment', 'api');
      expect(address(attachment.lb_target_group_arn)).toBe(`${region.prefix}aws_lb_target_group.api.arn`);
      expect(address(attachment.autoscaling_group_name)).toBe(`${region.prefix}module.eks.eks_managed_node_groups["default"].node_group_autoscaling_group_names[0]`);
    });

    it("serves HTTPS with this region's ACM certificate and a TLS 1.3 policy, and refuses another region's", () => {
      const https = region.instance('aws_lb_listener', 'https');
      expect(https).toMatchObject({ port: 443, protocol: 'HTTPS', certificate_arn: certificate(where) });
      expect(https.ssl_policy).toMatch(/TLS13/);
      expect(region.failedPreconditions('aws_lb_listener', 'https')).toEqual([]);
      // A certificate of another region: refused before anything is created.
      const other = certificate(where === PRIMARY ? SECONDARY : PRIMARY);
      expect(region.with({ certificate_arn: other }).failedPreconditions('aws_lb_listener', 'https')).toEqual([
        `The certificate of ${where} must be an ACM certificate of ${where}: a load balancer takes only its own region's.`,
      ]);
      const [ingress, ...more] = region.instance('aws_security_group', 'alb').ingress;
      expect(more).toHaveLength(0);
      expect(ingress).toMatchObject({ from_port: 443, to_port: 443, protocol: 'tcp', cidr_blocks: tf.variable.allowed_cidrs.default });
    });

    it('has no port 80 unless asked for, and then only a redirect, or plain HTTP from given CIDRs', () => {
      expect(tf.variable.plain_http.default).toBe('off');
      expect(region.instances('aws_lb_listener').map((l) => l.address)).toEqual([`${region.prefix}aws_lb_listener.https`]);

      const redirect = variant(where, { plain_http: 'redirect' });
      const [action] = redirect.instance('aws_lb_listener', 'http', 0).default_action;
      expect(action).toMatchObject({ type: 'redirect', redirect: [{ port: '443', protocol: 'HTTPS', status_code: 'HTTP_301' }] });
      expect(action.target_group_arn).toBeUndefined(); // never a blanket forward
      expect(redirect.instances('aws_lb_listener_rule').map((rule) => rule.key)).toEqual(['https', 'https']);
      expect(redirect.instance('aws_security_group', 'alb').ingress[1]).toMatchObject({ from_port: 80, cidr_blocks: tf.variable.allowed_cidrs.default });

      const testNetwork = ['198.51.100.0/24'];
      const forward = variant(where, { plain_http: 'forward', plain_http_cidrs: testNetwork });
      expect(forward.failedPreconditions('aws_lb_listener', 'http', 0)).toEqual([]);
      expect(forward.instance('aws_lb_listener', 'http', 0).default_action[0]).toMatchObject({ type: 'fixed-response', fixed_response: [{ status_code: '404' }] });
      expect(forward.instance('aws_security_group', 'alb').ingress[1]).toMatchObject({ from_port: 80, cidr_blocks: testNetwork });
      // Without CIDRs, plain HTTP is refused before anything is created.
      expect(variant(where, { plain_http: 'forward' }).failedPreconditions('aws_lb_listener', 'http', 0)).toEqual([expect.stringMatching(/needs plain_http_cidrs/)]);
    });

    it('writes access logs by default to an encrypted, private bucket of this region that only ELB log delivery may write to; opt out with alb_access_logs = false', () => {
      expect(tf.variable.alb_access_logs.default).toBe(true);
      const bucket = region.instance('aws_s3_bucket', 'alb_logs', 0);
      expect(bucket.region).toBe(where);
      expect(bucket.bucket).toMatch(new RegExp(`^docsvc-alb-logs-\\d{12}${where === PRIMARY ? '' : `-${where}`}$`));
      expect(region.instance('aws_lb', 'api').access_logs).toEqual([{ bucket: new Unknown(`${region.prefix}aws_s3_bucket.alb_logs[0].id`), enabled: true }]);
      const sse = region.instance('aws_s3_bucket_server_side_encryption_configuration', 'alb_logs', 0);
      expect(sse.rule[0].apply_server_side_encryption_by_default[0].sse_algorithm).toBe('AES256'); // the only one access logs support
      expect(region.instance('aws_s3_bucket_public_access_block', 'alb_logs', 0)).toMatchObject({
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
      expect(region.instance('aws_s3_bucket_lifecycle_configuration', 'alb_logs', 0).rule[0].expiration[0].days).toBe(90);
      const policy = region.instance('aws_iam_policy_document', 'alb_logs', 0, 'data').statement;
      // Writes only, only under this account's prefix, by the region's ELB account or the log-delivery service.
      const writers = policy.filter((s: Json) => s.effect !== 'Deny');
      expect(writers.map((s: Json) => s.principals[0].identifiers[0])).toEqual([
        new Unknown(`${region.prefix}data.aws_elb_service_account.this[0].arn`),
        'logdelivery.elasticloadbalancing.amazonaws.com',
      ]);
      for (const statement of writers) {
        expect(statement.actions).toEqual(['s3:PutObject']);
        expect(statement.resources).toEqual([`arn:aws:s3:::${bucket.bucket}/AWSLogs/${exampleAccountId}/*`]);
      }
      expect(policy.find((s: Json) => s.sid === 'DenyInsecureTransport')).toMatchObject({ effect: 'Deny', condition: [{ variable: 'aws:SecureTransport', values: ['false'] }] });
      expect(region.instance('aws_elb_service_account', 'this', 0, 'data').region).toBe(where);

      const off = variant(where, { alb_access_logs: false });
      expect(off.instance('aws_lb', 'api').access_logs).toEqual([]);
      expect(off.instances('aws_s3_bucket').map((b) => b.address)).toEqual([`${region.prefix}aws_s3_bucket.documents`]);
    });

    it('opens the NodePort in the nodes security group to the load balancer only', () => {
      const rule = region.instance('aws_vpc_security_group_ingress_rule', 'nodes_from_alb');
      expect(address(rule.security_group_id)).toBe(nodeSecurityGroup);
      expect(address(rule.referenced_security_group_id)).toBe(`${region.prefix}aws_security_group.alb.id`);
      expect(rule).toMatchObject({ from_port: tf.variable.node_port.default, to_port: tf.variable.node_port.default });
      expect(rule.cidr_ipv4).toBeUndefined();
      const [egress, ...more] = region.instance('aws_security_group', 'alb').egress;
      expect(more).toHaveLength(0);
      expect(egress.security_groups.map(address)).toEqual([nodeSecurityGroup]);
      expect(egress.from_port).toBe(tf.variable.node_port.default);
    });
  });

  describe('S3 bucket', () => {
    const bucket = `${region.prefix}aws_s3_bucket.documents`;

    it('blocks every kind of public access and ACLs', () => {
      expect(region.instance('aws_s3_bucket_public_access_block', 'documents')).toEqual({
        region: where,
        bucket: new Unknown(`${bucket}.id`),
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
      expect(region.instance('aws_s3_bucket_ownership_controls', 'documents').rule[0].object_ownership).toBe('BucketOwnerEnforced');
    });

    it('is encrypted under its region\'s customer-managed key with S3 Bucket Keys, versioned, and expires old versions and abandoned uploads', () => {
      const sse = region.instance('aws_s3_bucket_server_side_encryption_configuration', 'documents');
      expect(sse.rule).toEqual([
        {
          apply_server_side_encryption_by_default: [{ sse_algorithm: 'aws:kms', kms_master_key_id: new Unknown(`aws_kms_key.data["${where}"].arn`) }],
          bucket_key_enabled: true,
        },
      ]);
      expect(region.instance('aws_s3_bucket_versioning', 'documents').versioning_configuration[0].status).toBe('Enabled');
      const [rule] = region.instance('aws_s3_bucket_lifecycle_configuration', 'documents').rule;
      expect(rule.status).toBe('Enabled');
      expect(rule.noncurrent_version_expiration[0].noncurrent_days).toBeGreaterThan(0);
      expect(rule.abort_incomplete_multipart_upload[0].days_after_initiation).toBeGreaterThan(0);
    });

    it('has Object Lock only when asked, turned on without replacing the bucket, with no default retention', () => {
      expect(region.instances('aws_s3_bucket_object_lock_configuration')).toEqual([]);
      const locked = withValues({ object_lock: true });
      const { depends_on: _after, ...lock } = locked.instance('aws_s3_bucket_object_lock_configuration', 'documents', 0);
      expect(lock).toEqual({ region: where, bucket: new Unknown(`${bucket}.id`), object_lock_enabled: 'Enabled' });
      // Versioning first: Object Lock needs it.
      expect(resourceOf(mod, 'aws_s3_bucket_object_lock_configuration', 'documents').depends_on).toEqual(['${aws_s3_bucket_versioning.documents}']);
      // The bucket's own object_lock_enabled would force a new bucket: it is not set, either way.
      expect(locked.instance('aws_s3_bucket', 'documents')).toEqual(region.instance('aws_s3_bucket', 'documents'));
      expect(locked.instance('aws_s3_bucket', 'documents')).not.toHaveProperty('object_lock_enabled');
    });

    it('denies every request that is not over TLS', () => {
      expect(address(region.instance('aws_s3_bucket_policy', 'documents').policy)).toBe(`${region.prefix}data.aws_iam_policy_document.documents_bucket.json`);
      const [deny, ...others] = region.instance('aws_iam_policy_document', 'documents_bucket', undefined, 'data').statement;
      expect(others).toHaveLength(0);
      const arn = region.instance('aws_s3_bucket', 'documents').bucket;
      expect(deny).toEqual({
        sid: 'DenyInsecureTransport',
        effect: 'Deny',
        actions: ['s3:*'],
        resources: [`arn:aws:s3:::${arn}`, `arn:aws:s3:::${arn}/*`],
        principals: [{ type: '*', identifiers: ['*'] }],
        condition: [{ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] }],
      });
    });
  });

  describe('ElastiCache Redis', () => {
    const redis = region.instance('aws_elasticache_replication_group', 'redis');

    it("encrypts in transit and at rest, with an auth token kept in this region's Secrets Manager only", () => {
      expect(redis).toMatchObject({ transit_encryption_enabled: true, at_rest_encryption_enabled: true });
      // The token is the secret's value (as written), this region's own (as evaluated).
      expect(resourceOf(mod, 'aws_elasticache_replication_group', 'redis').auth_token).toBe('${aws_secretsmanager_secret_version.redis_auth.secret_string}');
      expect(address(redis.auth_token)).toBe(`${region.prefix}random_password.redis_auth.result`);
      const version = region.instance('aws_secretsmanager_secret_version', 'redis_auth');
      expect(version).toMatchObject({ region: where, secret_id: new Unknown(`${region.prefix}aws_secretsmanager_secret.redis_auth.id`) });
      expect(address(version.secret_string)).toBe(`${region.prefix}random_password.redis_auth.result`);
      expect(region.instance('aws_secretsmanager_secret', 'redis_auth').region).toBe(where);
      // Rotated outside terraform (docs/deploy.md), which must not put the first token back.
      expect(blockOf(resourceOf(mod, 'aws_secretsmanager_secret_version', 'redis_auth'), 'lifecycle').ignore_changes).toEqual(['${secret_string}']);
      expect(blockOf(resourceOf(mod, 'aws_elasticache_replication_group', 'redis'), 'lifecycle').ignore_changes).toEqual(['${auth_token}']);
    });

    it('fails over across AZs from the private subnets', () => {
      expect(redis).toMatchObject({ automatic_failover_enabled: true, multi_az_enabled: true });
      expect(redis.num_cache_clusters).toBeGreaterThanOrEqual(2);
      expect(address(region.instance('aws_elasticache_subnet_group', 'redis').subnet_ids)).toBe(`${region.prefix}module.vpc.private_subnets`);
    });

    it('is reachable from the nodes security group only', () => {
      expect(redis.security_group_ids.map(address)).toEqual([`${region.prefix}aws_security_group.redis.id`]);
      const group = region.instance('aws_security_group', 'redis');
      expect(group.egress).toBeUndefined();
      expect(group.ingress).toHaveLength(1);
      const [ingress] = group.ingress;
      expect(ingress).toMatchObject({ from_port: 6379, to_port: 6379, protocol: 'tcp' });
      expect(ingress.security_groups.map(address)).toEqual([`${region.prefix}module.eks.node_security_group_id`]);
      expect(ingress.cidr_blocks).toBeUndefined();
      // No other rule resource opens it.
      for (const type of ['aws_vpc_security_group_ingress_rule', 'aws_security_group_rule']) {
        for (const rule of region.instances(type)) expect(JSON.stringify(rule.config.referenced_security_group_id ?? '')).not.toContain('aws_security_group.redis');
      }
    });
  });
});

describe('DynamoDB tables', () => {
  const table = resourceOf(tf, 'aws_dynamodb_table', 'this');

  it('is one resource over the tables map', () => {
    expect(table.for_each).toBe('${local.tables}');
    expect(Object.keys(tf.locals.tables).sort()).toEqual(['documents', 'idempotency-keys', 'order-consumer', 'orders']);
  });

  it('are on-demand, with point-in-time recovery, KMS encryption, TTL and deletion protection', () => {
    for (const { address: a, config } of one.instances('aws_dynamodb_table')) {
      expect(config.billing_mode, a).toBe('PAY_PER_REQUEST');
      expect(config.point_in_time_recovery, a).toEqual([{ enabled: true }]);
      // The region's customer-managed key (keys.tf), not the AWS managed one.
      expect(config.server_side_encryption, a).toEqual([{ enabled: true, kms_key_arn: new Unknown(`aws_kms_key.data["${PRIMARY}"].arn`) }]);
      expect(config.ttl[0].enabled, a).toBe(true);
      expect(config.deletion_protection_enabled, a).toBe(true);
    }
    expect(blockOf(table, 'ttl')).toEqual({ attribute_name: '${each.value.ttl}', enabled: true });
  });

  it('declare exactly the attributes their keys use (DynamoDB rejects any other)', () => {
    for (const [name, spec] of Object.entries(tf.locals.tables as Record<string, Json>)) {
      const keyAttributes = new Set<string>([spec.hash_key]);
      for (const index of spec.indexes) {
        keyAttributes.add(index.hash_key);
        if (index.range_key) keyAttributes.add(index.range_key);
      }
      expect(Object.keys(spec.attributes).sort(), name).toEqual([...keyAttributes].sort());
      for (const type of Object.values(spec.attributes)) expect(['S', 'N', 'B']).toContain(type);
    }
    // ...and the resource takes keys, attributes and indexes from that map.
    expect(table.hash_key).toBe('${each.value.hash_key}');
    expect(blockOf(table.dynamic, 'attribute').for_each).toBe('${each.value.attributes}');
    const gsi = blockOf(table.dynamic, 'global_secondary_index');
    expect(gsi.for_each).toBe('${each.value.indexes}');
    expect(blockOf(gsi, 'content')).toMatchObject({
      hash_key: '${global_secondary_index.value.hash_key}',
      range_key: '${global_secondary_index.value.range_key}',
      projection_type: '${global_secondary_index.value.projection}',
    });
  });
});

describe('KMS keys', () => {
  const keyed = deploy({ ...twoRegionValues, tenant_kms_keys: ['acme', 'globex'] });

  it('one per region for its data, and one per tenant asked per region, rotated, administered by the account alone', () => {
    for (const [plan, regions, tenants] of [
      [one, [PRIMARY], []],
      [two, [PRIMARY, SECONDARY], []],
      [keyed, [PRIMARY, SECONDARY], ['acme', 'globex']],
    ] as const) {
      const keys = plan.instances('aws_kms_key');
      const expected = [...regions.map((region) => `aws_kms_key.data["${region}"]`), ...regions.flatMap((region) => tenants.map((tenant) => `aws_kms_key.tenant["${region}:${tenant}"]`))];
      expect(keys.map((key) => key.address).sort()).toEqual(expected.sort());
      for (const { address: a, config } of keys) {
        expect(config, a).toMatchObject({ enable_key_rotation: true, deletion_window_in_days: 30 });
        // The policy of the key's region: CloudFront decrypts that region's documents only.
        expect(address(config.policy)).toBe(`data.aws_iam_policy_document.kms_key["${config.region}"].json`);
        expect(a).toContain(`["${config.region}`);
      }
      const aliases = plan.instances('aws_kms_alias').map(({ config }) => [config.region, config.name, String(config.target_key_id)]);
      expect(aliases.sort()).toEqual(
        [
          ...regions.map((region) => [region, 'alias/docsvc-data', `<aws_kms_key.data["${region}"].key_id>`]),
          ...regions.flatMap((region) => tenants.map((tenant) => [region, `alias/docsvc-tenant-${tenant}`, `<aws_kms_key.tenant["${region}:${tenant}"].key_id>`])),
        ].sort(),
      );
    }
    const [statement, ...others] = one.instance('aws_iam_policy_document', 'kms_key', PRIMARY, 'data').statement;
    expect(others).toEqual([]);
    expect(statement).toMatchObject({ actions: ['kms:*'], resources: ['*'], principals: [{ type: 'AWS', identifiers: ['arn:aws:iam::123456789012:root'] }] });
  });

  it('are named to the pods by alias, the same in every region, tenant keys as TENANT_KMS_KEYS', () => {
    for (const env of Object.values(keyed.output('region_k8s_env') as Record<string, string>)) {
      expect(env).toContain('DOCUMENTS_KMS_KEY_ID=alias/docsvc-data\n');
      expect(env).toContain('TENANT_KMS_KEYS=acme=alias/docsvc-tenant-acme,globex=alias/docsvc-tenant-globex\n');
    }
  });

  it('refuse a tenant name the service would not have', () => {
    expect(deploy({ tenant_kms_keys: ['acme'] }).failedValidations()).toEqual([]);
    expect(deploy({ tenant_kms_keys: ['Acme/Corp'] }).failedValidations()).toEqual([expect.stringMatching(/^var\.tenant_kms_keys: /)]);
  });
});

describe('SNS and SQS', () => {
  it('encrypts the topic and both queues', () => {
    expect(resourceOf(tf, 'aws_sns_topic', 'order_events').kms_master_key_id).toMatch(/\S/);
    expect(resourceOf(tf, 'aws_sqs_queue', 'order_events').sqs_managed_sse_enabled).toBe(true);
    expect(resourceOf(tf, 'aws_sqs_queue', 'order_events_dlq').sqs_managed_sse_enabled).toBe(true);
  });

  it('sends poison messages to the DLQ after CONSUMER_MAX_RECEIVES receives', () => {
    const redrive = resourceOf(tf, 'aws_sqs_queue', 'order_events').redrive_policy;
    expect(redrive).toMatch(/deadLetterTargetArn\s*=\s*aws_sqs_queue\.order_events_dlq\.arn/);
    expect(redrive).toMatch(/maxReceiveCount\s*=\s*var\.consumer_max_receives/);
    const allow = resourceOf(tf, 'aws_sqs_queue_redrive_allow_policy', 'order_events_dlq').redrive_allow_policy;
    expect(allow).toMatch(/sourceQueueArns\s*=\s*\[aws_sqs_queue\.order_events\.arn\]/);
  });

  it('lets only the topic send to the queue, and subscribes the queue to it', () => {
    expect(resourceOf(tf, 'aws_sqs_queue_policy', 'order_events')).toMatchObject({
      queue_url: '${aws_sqs_queue.order_events.id}',
      policy: '${data.aws_iam_policy_document.order_events_queue.json}',
    });
    const [statement, ...others] = dataOf(tf, 'aws_iam_policy_document', 'order_events_queue').statement;
    expect(others).toHaveLength(0);
    expect(statement.actions).toEqual(['sqs:SendMessage']);
    expect(statement.resources).toEqual(['${aws_sqs_queue.order_events.arn}']);
    expect(blockOf(statement, 'principals')).toEqual({ type: 'Service', identifiers: ['sns.amazonaws.com'] });
    expect(blockOf(statement, 'condition')).toEqual({
      test: 'ArnEquals',
      variable: 'aws:SourceArn',
      values: ['${aws_sns_topic.order_events.arn}'],
    });

    const subscription = resourceOf(tf, 'aws_sns_topic_subscription', 'order_events');
    expect(subscription).toMatchObject({
      topic_arn: '${aws_sns_topic.order_events.arn}',
      protocol: 'sqs',
      endpoint: '${aws_sqs_queue.order_events.arn}',
    });
    expect(typeof subscription.raw_message_delivery).toBe('boolean');
    for (const type of Object.keys(resources('aws_sns_topic'))) expect(type).toMatch(/order_events/);
  });
});

describe('image repository', () => {
  it('has immutable tags and scans on push', () => {
    const repository = resourceOf(tf, 'aws_ecr_repository', 'app');
    expect(repository.image_tag_mutability).toBe('IMMUTABLE');
    expect(blockOf(repository, 'image_scanning_configuration').scan_on_push).toBe(true);
  });
});
