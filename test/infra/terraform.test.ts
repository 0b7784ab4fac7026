// terraform/: every file parses, and the security properties of issue 4 hold
// in the parsed configuration (no terraform binary or AWS account needed).
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

  it('describes and types every variable, and defaults all but none (apply needs no -var)', () => {
    for (const [name, variable] of Object.entries(tf.variable)) {
      expect(variable.description, name).toMatch(/\w{3,}/);
      expect(variable.type, name).toBeTypeOf('string');
      expect('default' in variable, `${name} has a default`).toBe(true);
    }
  });

  it('describes every output and exposes the load balancer DNS name', () => {
    for (const [name, output] of Object.entries(tf.output)) expect(output.description, name).toMatch(/\w{3,}/);
    expect(tf.output.load_balancer_dns_name.value).toBe('${aws_lb.api.dns_name}');
    expect(tf.output.ecr_repository_url.value).toBe('${aws_ecr_repository.app.repository_url}');
    expect(tf.output.redis_url.sensitive).toBe(true);
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

  it('binds the ServiceAccount to a role only EKS Pod Identity can assume', () => {
    const association = resourceOf(tf, 'aws_eks_pod_identity_association', 'app');
    expect(association.role_arn).toBe('${aws_iam_role.app.arn}');
    expect(association.cluster_name).toBe('${module.eks.cluster_name}');
    expect(names.template(association.namespace)).toBe('docsvc');
    expect(names.template(association.service_account)).toBe('docsvc');

    const role = resourceOf(tf, 'aws_iam_role', 'app');
    expect(role.assume_role_policy).toBe('${data.aws_iam_policy_document.app_trust.json}');
    const [trust, ...others] = dataOf(tf, 'aws_iam_policy_document', 'app_trust').statement;
    expect(others).toHaveLength(0);
    expect(trust.actions.sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
    expect(blockOf(trust, 'principals')).toEqual({ type: 'Service', identifiers: ['pods.eks.amazonaws.com'] });
    expect(trust.condition.map((c: Json) => c.variable).sort()).toEqual(['aws:SourceAccount', 'aws:SourceArn']);
  });

  it('grants the pods least privilege: data-plane actions on their own resources only', () => {
    expect(resourceOf(tf, 'aws_iam_role_policy', 'app')).toMatchObject({
      role: '${aws_iam_role.app.id}',
      policy: '${data.aws_iam_policy_document.app.json}',
    });
    const statements: Json[] = dataOf(tf, 'aws_iam_policy_document', 'app').statement;
    const expected: Record<string, RegExp> = {
      dynamodb: /aws_dynamodb_table\.this/,
      s3: /aws_s3_bucket\.documents\.arn/,
      sns: /^\$\{aws_sns_topic\.order_events\.arn\}$/,
      sqs: /^\$\{aws_sqs_queue\.order_events(_dlq)?\.arn\}$/,
    };
    const services = new Set<string>();
    for (const statement of statements) {
      expect(statement.effect ?? 'Allow', statement.sid).toBe('Allow');
      const resourceList: string[] = Array.isArray(statement.resources) ? statement.resources : [statement.resources];
      for (const action of statement.actions as string[]) {
        const [service = '', verb = ''] = action.split(':');
        services.add(service);
        expect(verb, action).not.toMatch(/\*/);
        expect(verb, action).not.toMatch(/^(Create|Delete(Table|Bucket|Topic|Queue)|Put.*Policy|Set|Subscribe|Purge)/);
        for (const resource of resourceList) expect(resource, action).toMatch(expected[service] ?? /^$/);
      }
      for (const resource of resourceList) expect(resource).not.toBe('*');
    }
    expect([...services].sort()).toEqual(['dynamodb', 's3', 'sns', 'sqs']);
    // Object actions on the bucket's objects, bucket actions on the bucket.
    const objects = statements.find((s) => s.actions.includes('s3:GetObject'));
    expect(objects.resources).toEqual(['${aws_s3_bucket.documents.arn}/*']);
    const tables = statements.find((s) => s.actions.includes('dynamodb:Query'));
    expect(tables.resources).toMatch(/\/index\/\*/); // the outbox GSI
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
    const http = blockOf(resourceOf(tf, 'aws_lb_listener', 'http'), 'default_action');
    expect(http.target_group_arn).toMatch(/aws_lb_target_group\.api\.arn/);
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

  it('uses a modern TLS policy when HTTPS is on', () => {
    const https = resourceOf(tf, 'aws_lb_listener', 'https');
    expect(https.protocol).toBe('HTTPS');
    expect(https.ssl_policy).toMatch(/TLS13/);
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
