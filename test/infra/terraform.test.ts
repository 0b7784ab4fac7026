// terraform/: every file parses, and the security properties hold in the
// parsed configuration (no terraform binary or AWS account needed). The
// per-component IAM policies are derived from the code in iam.test.ts, the
// load balancer's public routes from the app in load-balancer.test.ts.
import { describe, expect, it } from 'vitest';
import { blockOf, dataOf, type Json, loadTerraform, resourceOf, routes, TerraformNames } from './helpers.ts';

const tf = await loadTerraform();
const names = new TerraformNames(tf);
const resources = (type: string): Record<string, Json> => tf.resource[type] ?? {};

describe('terraform files', () => {
  it('parses every .tf file', () => {
    expect(Object.keys(tf.files).length).toBeGreaterThanOrEqual(5);
    for (const [file, parsed] of Object.entries(tf.files)) {
      expect(Object.keys(parsed), file).not.toHaveLength(0);
    }
  });

  it('pins terraform, the providers and the modules', () => {
    const settings = tf.terraform;
    expect(settings).toHaveLength(1);
    expect(settings[0].required_version).toMatch(/^>= ?1\.\d+/);
    const providers = blockOf(settings[0], 'required_providers');
    expect(providers.aws).toEqual({ source: 'hashicorp/aws', version: expect.stringMatching(/^~> 6\./) });
    expect(providers.random).toEqual({ source: 'hashicorp/random', version: expect.stringMatching(/^~> 3\./) });
    // Every provider a resource uses is declared with a version.
    const used = new Set(Object.keys(tf.resource).map((type) => type.split('_')[0] ?? type));
    for (const provider of used) expect(providers[provider]?.version, provider).toBeTypeOf('string');

    expect(tf.module.vpc).toMatchObject({ source: 'terraform-aws-modules/vpc/aws', version: '~> 6.0' });
    expect(tf.module.eks).toMatchObject({ source: 'terraform-aws-modules/eks/aws', version: '~> 21.0' });
    // Registry modules are pinned; a module of this repository (./modules/...) has no version.
    for (const [name, module] of Object.entries(tf.module)) {
      if (!String(module.source).startsWith('./')) expect(module.version, name).toMatch(/^~> \d+\.\d+$/);
    }
  });

  it('describes and types every variable, and defaults all but what only the operator can decide', () => {
    for (const [name, variable] of Object.entries(tf.variable)) {
      expect(variable.description, name).toMatch(/\w{3,}/);
      expect(variable.type, name).toBeTypeOf('string');
    }
    // Who may run kubectl, and the TLS certificate of the API's domain: no default is safe.
    const required = Object.entries(tf.variable).filter(([, v]) => !('default' in v)).map(([name]) => name);
    expect(required.sort()).toEqual(['admin_cidrs', 'certificate_arn']);
  });

  it('refuses the whole internet for kubectl and for plain HTTP, and anything but an ACM certificate', () => {
    for (const name of ['admin_cidrs', 'plain_http_cidrs']) {
      const { condition } = blockOf(tf.variable[name], 'validation');
      expect(condition, name).toContain('"0.0.0.0/0"');
      expect(condition, name).toContain('"::/0"');
    }
    expect(blockOf(tf.variable.certificate_arn, 'validation').condition).toMatch(/:acm:/);
  });

  it('describes every output, exposes the load balancer DNS name, and hands out no secret', () => {
    for (const [name, output] of Object.entries(tf.output)) expect(output.description, name).toMatch(/\w{3,}/);
    expect(tf.output.load_balancer_dns_name.value).toBe('${aws_lb.api.dns_name}');
    expect(tf.output.ecr_repository_url.value).toBe('${aws_ecr_repository.app.repository_url}');
    expect(tf.output.api_url.value).toMatch(/^https:\/\//);
    for (const [name, output] of Object.entries(tf.output)) {
      expect(JSON.stringify(output.value), name).not.toMatch(/random_password|secret_string|auth_token/);
    }
  });
});

describe('network and cluster', () => {
  it('spans at least two AZs with public and private subnets', () => {
    const azs = /^\$\{slice\(data\.aws_availability_zones\.available\.names, (\d+), (\d+)\)\}$/.exec(tf.locals.azs);
    expect(azs).not.toBeNull();
    expect(Number(azs?.[2]) - Number(azs?.[1])).toBeGreaterThanOrEqual(2);
    const vpc = tf.module.vpc;
    expect(vpc.azs).toBe('${local.azs}');
    expect(vpc.private_subnets).toMatch(/local\.azs/);
    expect(vpc.public_subnets).toMatch(/local\.azs/);
    expect(vpc.enable_nat_gateway).toBe(true);
  });

  it('runs a managed node group in the private subnets, with the Pod Identity agent', () => {
    const eks = tf.module.eks;
    expect(eks.subnet_ids).toBe('${module.vpc.private_subnets}');
    expect(eks.eks_managed_node_groups.default.subnet_ids).toBe('${module.vpc.private_subnets}');
    expect(eks.addons).toHaveProperty('eks-pod-identity-agent');
    expect(eks.addons).toHaveProperty('metrics-server'); // the API's HPA needs it
  });

  it('opens the EKS API endpoint only to the operator CIDRs, or keeps it private', () => {
    const eks = tf.module.eks;
    expect(eks.endpoint_private_access).toBe(true);
    expect(eks.endpoint_public_access).toBe('${length(var.admin_cidrs) > 0}');
    expect(eks.endpoint_public_access_cidrs).toBe('${var.admin_cidrs}');
    expect('default' in tf.variable.admin_cidrs).toBe(false);
  });

  it('enforces the NetworkPolicies of k8s/ (the VPC CNI only does when told)', () => {
    const cni = tf.module.eks.addons['vpc-cni'];
    expect(cni.configuration_values).toBe('${jsonencode({ enableNetworkPolicy = "true" })}');
  });

  it('encrypts the nodes root volumes, and keeps pods off the node role through IMDS', () => {
    const group = tf.module.eks.eks_managed_node_groups.default;
    const mappings = Object.values(group.block_device_mappings as Record<string, Json>);
    expect(mappings).toHaveLength(1);
    expect(mappings[0]).toMatchObject({ device_name: '/dev/xvda', ebs: { encrypted: true, volume_type: 'gp3', delete_on_termination: true } });
    expect(group.metadata_options).toMatchObject({ http_tokens: 'required', http_put_response_hop_limit: 1 });
  });

  it('records VPC flow logs when asked, and only then', () => {
    const vpc = tf.module.vpc;
    expect(tf.variable.vpc_flow_logs.default).toBe(false);
    for (const input of ['enable_flow_log', 'create_flow_log_cloudwatch_log_group', 'create_flow_log_cloudwatch_iam_role']) {
      expect(vpc[input], input).toBe('${var.vpc_flow_logs}');
    }
    expect(vpc.flow_log_cloudwatch_log_group_retention_in_days).toBeGreaterThan(0);
  });
});

describe('load balancer', () => {
  const nodePort = names.variable('node_port');

  it('is an internet-facing ELB in the public subnets', () => {
    const lb = resourceOf(tf, 'aws_lb', 'api');
    expect(lb.load_balancer_type).toBe('application');
    expect(lb.internal).toBe(false);
    expect(lb.subnets).toBe('${module.vpc.public_subnets}');
    expect(lb.drop_invalid_header_fields).toBe(true);
  });

  it('forwards to the NodePort on the node group instances, health-checked on a real route', () => {
    const group = resourceOf(tf, 'aws_lb_target_group', 'api');
    expect(group.target_type).toBe('instance');
    expect(names.template(group.port)).toBe(nodePort);
    const health = blockOf(group, 'health_check');
    expect(routes.api).toContain(health.path);
    expect(health.port).toBe('traffic-port');

    const attachment = resourceOf(tf, 'aws_autoscaling_attachment', 'api');
    expect(attachment.lb_target_group_arn).toBe('${aws_lb_target_group.api.arn}');
    expect(attachment.autoscaling_group_name).toMatch(
      /^\$\{module\.eks\.eks_managed_node_groups\["default"\]\.node_group_autoscaling_group_names\[0\]\}$/,
    );
  });

  it('serves HTTPS with a required ACM certificate and a TLS 1.3 policy', () => {
    const https = resourceOf(tf, 'aws_lb_listener', 'https');
    expect(https.count).toBeUndefined();
    expect(https).toMatchObject({ port: 443, protocol: 'HTTPS', certificate_arn: '${var.certificate_arn}' });
    expect(https.ssl_policy).toMatch(/TLS13/);
    const [ingress, ...more] = resourceOf(tf, 'aws_security_group', 'alb').ingress;
    expect(more).toHaveLength(0);
    expect(ingress).toMatchObject({ from_port: 443, to_port: 443, cidr_blocks: '${var.allowed_cidrs}' });
  });

  it('has no port 80 unless asked for, and then only a redirect, or plain HTTP from given CIDRs', () => {
    expect(tf.variable.plain_http.default).toBe('off');
    expect(tf.variable.plain_http_cidrs.default).toEqual([]);
    const http = resourceOf(tf, 'aws_lb_listener', 'http');
    expect(http.count).toBe('${var.plain_http == "off" ? 0 : 1}');
    const action = blockOf(http, 'default_action');
    expect(action.target_group_arn).toBeUndefined(); // never a blanket forward
    expect(action.type).toBe('${var.plain_http == "redirect" ? "redirect" : "fixed-response"}');
    expect(blockOf(blockOf(action.dynamic, 'redirect'), 'content')).toMatchObject({ protocol: 'HTTPS', status_code: 'HTTP_301' });
    expect(blockOf(blockOf(http, 'lifecycle'), 'precondition').condition).toBe(
      '${var.plain_http != "forward" || length(var.plain_http_cidrs) > 0}',
    );
    const port80 = blockOf(resourceOf(tf, 'aws_security_group', 'alb').dynamic, 'ingress');
    expect(port80.for_each).toBe('${var.plain_http == "off" ? [] : [var.plain_http]}');
    expect(blockOf(port80, 'content')).toMatchObject({
      from_port: 80,
      cidr_blocks: '${ingress.value == "redirect" ? var.allowed_cidrs : var.plain_http_cidrs}',
    });
  });

  it('writes access logs to an encrypted, private bucket when asked, and only then', () => {
    expect(tf.variable.alb_access_logs.default).toBe(false);
    const logs = blockOf(resourceOf(tf, 'aws_lb', 'api').dynamic, 'access_logs');
    expect(logs.for_each).toBe('${var.alb_access_logs ? [1] : []}');
    for (const type of ['aws_s3_bucket', 'aws_s3_bucket_public_access_block', 'aws_s3_bucket_server_side_encryption_configuration', 'aws_s3_bucket_policy']) {
      expect(resourceOf(tf, type, 'alb_logs').count, type).toBe('${var.alb_access_logs ? 1 : 0}');
    }
    const sse = blockOf(blockOf(resourceOf(tf, 'aws_s3_bucket_server_side_encryption_configuration', 'alb_logs'), 'rule'), 'apply_server_side_encryption_by_default');
    expect(sse.sse_algorithm).toBe('AES256'); // the only one access logs support
    const block = resourceOf(tf, 'aws_s3_bucket_public_access_block', 'alb_logs');
    expect(block).toMatchObject({ block_public_acls: true, block_public_policy: true, ignore_public_acls: true, restrict_public_buckets: true });
  });

  it('opens the NodePort in the nodes security group to the load balancer only', () => {
    const rule = resourceOf(tf, 'aws_vpc_security_group_ingress_rule', 'nodes_from_alb');
    expect(rule.security_group_id).toBe('${module.eks.node_security_group_id}');
    expect(rule.referenced_security_group_id).toBe('${aws_security_group.alb.id}');
    expect(rule.cidr_ipv4).toBeUndefined();
    expect(names.template(rule.from_port)).toBe(nodePort);
    expect(names.template(rule.to_port)).toBe(nodePort);

    const [egress, ...more] = resourceOf(tf, 'aws_security_group', 'alb').egress;
    expect(more).toHaveLength(0);
    expect(egress.security_groups).toEqual(['${module.eks.node_security_group_id}']);
    expect(names.template(egress.from_port)).toBe(nodePort);
  });

});

describe('DynamoDB tables', () => {
  const table = resourceOf(tf, 'aws_dynamodb_table', 'this');

  it('is one resource over the tables map', () => {
    expect(table.for_each).toBe('${local.tables}');
    expect(Object.keys(tf.locals.tables).sort()).toEqual(['documents', 'idempotency-keys', 'order-consumer', 'orders']);
  });

  it('are on-demand, with point-in-time recovery, KMS encryption, TTL and deletion protection', () => {
    expect(table.billing_mode).toBe('PAY_PER_REQUEST');
    expect(blockOf(table, 'point_in_time_recovery')).toEqual({ enabled: true });
    expect(blockOf(table, 'server_side_encryption')).toEqual({ enabled: true });
    expect(blockOf(table, 'ttl')).toEqual({ attribute_name: '${each.value.ttl}', enabled: true });
    expect(names.template(table.deletion_protection_enabled)).toBe(true);
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

describe('S3 bucket', () => {
  const bucketRef = '${aws_s3_bucket.documents.id}';

  it('blocks every kind of public access and ACLs', () => {
    expect(resourceOf(tf, 'aws_s3_bucket_public_access_block', 'documents')).toEqual({
      bucket: bucketRef,
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    const ownership = resourceOf(tf, 'aws_s3_bucket_ownership_controls', 'documents');
    expect(blockOf(ownership, 'rule').object_ownership).toBe('BucketOwnerEnforced');
  });

  it('is encrypted, versioned, and expires old versions', () => {
    const sse = resourceOf(tf, 'aws_s3_bucket_server_side_encryption_configuration', 'documents');
    expect(sse.bucket).toBe(bucketRef);
    expect(blockOf(blockOf(sse, 'rule'), 'apply_server_side_encryption_by_default').sse_algorithm).toMatch(
      /^(AES256|aws:kms)$/,
    );
    const versioning = resourceOf(tf, 'aws_s3_bucket_versioning', 'documents');
    expect(blockOf(versioning, 'versioning_configuration').status).toBe('Enabled');
    const rule = blockOf(resourceOf(tf, 'aws_s3_bucket_lifecycle_configuration', 'documents'), 'rule');
    expect(rule.status).toBe('Enabled');
    expect(blockOf(rule, 'noncurrent_version_expiration').noncurrent_days).toBeGreaterThan(0);
    expect(blockOf(rule, 'abort_incomplete_multipart_upload').days_after_initiation).toBeGreaterThan(0);
  });

  it('denies every request that is not over TLS', () => {
    expect(resourceOf(tf, 'aws_s3_bucket_policy', 'documents').policy).toBe(
      '${data.aws_iam_policy_document.documents_bucket.json}',
    );
    const [deny] = dataOf(tf, 'aws_iam_policy_document', 'documents_bucket').statement;
    expect(deny.effect).toBe('Deny');
    expect(deny.actions).toEqual(['s3:*']);
    expect(deny.resources).toEqual(['${aws_s3_bucket.documents.arn}', '${aws_s3_bucket.documents.arn}/*']);
    expect(blockOf(deny, 'principals')).toEqual({ type: '*', identifiers: ['*'] });
    expect(blockOf(deny, 'condition')).toEqual({ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] });
  });
});

describe('ElastiCache Redis', () => {
  const redis = resourceOf(tf, 'aws_elasticache_replication_group', 'redis');

  it('encrypts in transit and at rest, with an auth token kept in Secrets Manager', () => {
    expect(redis.transit_encryption_enabled).toBe(true);
    expect(redis.at_rest_encryption_enabled).toBe(true);
    expect(redis.auth_token).toBe('${aws_secretsmanager_secret_version.redis_auth.secret_string}');
    const version = resourceOf(tf, 'aws_secretsmanager_secret_version', 'redis_auth');
    expect(version.secret_id).toBe('${aws_secretsmanager_secret.redis_auth.id}');
    expect(version.secret_string).toBe('${random_password.redis_auth.result}');
    // Rotated outside terraform (README), which must not put the first token back.
    expect(blockOf(version, 'lifecycle').ignore_changes).toEqual(['${secret_string}']);
    expect(blockOf(redis, 'lifecycle').ignore_changes).toEqual(['${auth_token}']);
  });

  it('fails over across AZs from the private subnets', () => {
    expect(redis.automatic_failover_enabled).toBe(true);
    expect(redis.multi_az_enabled).toBe(true);
    expect(redis.num_cache_clusters).toBeGreaterThanOrEqual(2);
    expect(resourceOf(tf, 'aws_elasticache_subnet_group', 'redis').subnet_ids).toBe('${module.vpc.private_subnets}');
  });

  it('is reachable from the nodes security group only', () => {
    expect(redis.security_group_ids).toEqual(['${aws_security_group.redis.id}']);
    const group = resourceOf(tf, 'aws_security_group', 'redis');
    expect(group.egress).toBeUndefined();
    expect(group.ingress).toHaveLength(1);
    const [ingress] = group.ingress;
    expect(ingress).toMatchObject({ from_port: 6379, to_port: 6379, protocol: 'tcp' });
    expect(ingress.security_groups).toEqual(['${module.eks.node_security_group_id}']);
    expect(ingress.cidr_blocks).toBeUndefined();
    // No other rule resource opens it.
    for (const type of ['aws_vpc_security_group_ingress_rule', 'aws_security_group_rule']) {
      for (const rule of Object.values(resources(type))) {
        expect(JSON.stringify(rule)).not.toContain('aws_security_group.redis');
      }
    }
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
  });
});

describe('image repository', () => {
  it('has immutable tags and scans on push', () => {
    const repository = resourceOf(tf, 'aws_ecr_repository', 'app');
    expect(repository.image_tag_mutability).toBe('IMMUTABLE');
    expect(blockOf(repository, 'image_scanning_configuration').scan_on_push).toBe(true);
  });
});
