# One AWS identity per process, in every region: each Deployment runs as a
# ServiceAccount of its own (k8s/serviceaccounts.yaml), which EKS Pod
# Identity binds to a role of its own in this region's cluster, allowed only
# the calls that process's code makes, on this region's resources (and the
# primary's orders, which every region's pods use). test/infra/iam.test.ts
# derives every list below from the code each entry point loads
# (src/processes/api.ts, src/processes/relay.ts, src/processes/order-consumer.ts, src/processes/content-sweeper.ts,
# and with several regions src/processes/invalidations.ts) and fails on any
# difference, in the primary and in a further region, so a new call needs
# its permission here, and a permission nothing calls any more goes. No
# Create*/Delete* of tables, buckets, topics or queues: terraform owns those.
locals {
  # Of several regions, the API writes each key at its home, which may be
  # any region's replica, and reads content not replicated yet from the
  # bucket that has it (docs/design.md, "Multi-region documents"); of one region,
  # both lists are this region's alone.
  document_tables = flatten([
    for region in var.regions : [
      var.global_table_arns["documents"][region],
      "${var.global_table_arns["documents"][region]}/index/*",
      var.global_table_arns["idempotency-keys"][region],
    ]
  ])
  bucket_arns = [for region in var.regions : region == var.region ? aws_s3_bucket.documents.arn : "arn:aws:s3:::${var.bucket_names[region]}"]
  # The KMS keys of those buckets' objects: each region's data key (its
  # default encryption) and the tenants' own keys (keys.tf in the root).
  content_keys = { for region in var.regions : region => concat([var.content_keys[region].data], values(var.content_keys[region].tenants)) }

  components = merge({
    api = {
      service_account = "docsvc-api"
      statements = concat([
        {
          # BatchGetItem: a listing page reads its documents at once.
          sid       = "Tables"
          actions   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = concat(local.document_tables, [var.orders.table_arn, "${var.orders.table_arn}/index/*"])
        },
        {
          # PutObject covers the parts of a multipart upload; a failed one is aborted. The Object Lock
          # calls set a retention and legal holds (S3_OBJECT_LOCK_MODE); nobody gets s3:BypassGovernanceRetention.
          sid       = "DocumentObjects"
          actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectLegalHold", "s3:PutObjectRetention"]
          resources = ["${aws_s3_bucket.documents.arn}/*"]
        },
        {
          # HeadBucket (readiness) is authorised as ListBucket; it also makes a missing key 404, not 403.
          # With S3_OBJECT_LOCK_MODE the API checks at start that every bucket has Object Lock.
          sid       = "DocumentBucket"
          actions   = ["s3:GetBucketObjectLockConfiguration", "s3:ListBucket"]
          resources = local.bucket_arns
        },
        {
          # SSE-KMS: a write makes a data key, a read (and each part of a multipart upload) decrypts it.
          sid       = "ContentKeys"
          actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
          resources = flatten(values(local.content_keys))
        },
        {
          sid       = "PublishOrderEvents"
          actions   = ["sns:GetTopicAttributes", "sns:Publish"]
          resources = [var.orders.topic_arn]
        },
        {
          # A document's events go to its home region's topic, whichever region took the request.
          sid     = "PublishDocumentChanges"
          actions = ["sns:Publish"]
          resources = [
            for region in var.regions : region == var.region ? aws_sns_topic.document_changes.arn : "arn:aws:sns:${region}:${var.account_id}:${var.name}-document-changes"
          ]
        },
        {
          # Read once at start (REDIS_AUTH_SECRET_ID): the token never sits in Kubernetes.
          sid       = "RedisAuthToken"
          actions   = ["secretsmanager:GetSecretValue"]
          resources = [aws_secretsmanager_secret.redis_auth.arn]
        },
        ], var.cdn ? [
        {
          # Read once at start (DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID): the key that signs CloudFront links, this region's.
          sid       = "CdnSigningKey"
          actions   = ["secretsmanager:GetSecretValue"]
          resources = [aws_secretsmanager_secret.cdn_private_key[0].arn]
        },
        ] : [], local.multi_region ? [
        {
          # Content that has not replicated here yet, read from the region that has it;
          # the parts and tails of a resumable upload homed there, which an instance here continues.
          sid       = "OtherRegionsObjects"
          actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectLegalHold", "s3:PutObjectRetention"]
          resources = [for region in local.other_regions : "arn:aws:s3:::${var.bucket_names[region]}/*"]
        },
        {
          # This region's deletes, for the other regions' caches.
          sid       = "AnnounceDeletes"
          actions   = ["sns:Publish"]
          resources = [aws_sns_topic.document_events[0].arn]
        },
      ] : [])
    }
    relay = {
      service_account = "docsvc-relay"
      statements = [
        {
          # The orders (in the primary) and this region's documents: both outboxes.
          sid     = "Tables"
          actions = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            var.orders.table_arn,
            "${var.orders.table_arn}/index/*",
            var.global_table_arns["documents"][var.region],
            "${var.global_table_arns["documents"][var.region]}/index/*",
          ]
        },
        {
          sid       = "PublishOrderEvents"
          actions   = ["sns:Publish"]
          resources = [var.orders.topic_arn]
        },
        {
          sid       = "PublishDocumentChanges"
          actions   = ["sns:Publish"]
          resources = [aws_sns_topic.document_changes.arn]
        },
      ]
    }
    consumer = {
      service_account = "docsvc-consumer"
      statements = [
        {
          # Its own records, and the orders it checks each event against. The
          # OrderStore it reads through also holds the intake's writes and the
          # outbox queries, and is granted whole (iam.test.ts reaches classes whole).
          sid       = "Tables"
          actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [var.orders.consumer_table_arn, var.orders.table_arn, "${var.orders.table_arn}/index/*"]
        },
        {
          sid       = "ConsumeOrderEvents"
          actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]
          resources = [var.orders.queue_arn]
        },
        {
          # Read-only: the depth of the dead-letter queue is worth a metric.
          sid       = "InspectDeadLetters"
          actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
          resources = [var.orders.dead_letter_queue_arn]
        },
      ]
    }
    lifecycle = {
      service_account = "docsvc-lifecycle"
      statements = concat([
        {
          # The documents, their tombstones index, and the sweep's lease item.
          sid     = "Tables"
          actions = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            var.global_table_arns["documents"][var.region],
            "${var.global_table_arns["documents"][var.region]}/index/*",
          ]
        },
        {
          sid       = "DocumentObjects"
          actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
          resources = ["${aws_s3_bucket.documents.arn}/*"]
        },
        {
          # Listing the bucket is the sweep.
          sid       = "DocumentBucket"
          actions   = ["s3:ListBucket"]
          resources = [aws_s3_bucket.documents.arn]
        },
        {
          # Its uploads' objects (S3Parts is reached whole) are SSE-KMS like the API's.
          sid       = "ContentKeys"
          actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
          resources = local.content_keys[var.region]
        },
        ], local.multi_region ? [
        {
          # An upload homed elsewhere is judged by its record at its home
          # (docs/design.md, "The content sweep of several regions"): read, nothing else.
          sid       = "OtherRegionsUploadRecords"
          actions   = ["dynamodb:GetItem"]
          resources = [for region in local.other_regions : var.global_table_arns["documents"][region]]
        },
      ] : [])
    }
    }, local.multi_region ? {
    # The other regions' deletes, made final in this region's Redis
    # (k8s/components/multi-region).
    invalidations = {
      service_account = "docsvc-invalidations"
      statements = [
        {
          sid       = "ConsumeInvalidations"
          actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]
          resources = [aws_sqs_queue.document_invalidations[0].arn]
        },
        {
          sid       = "RedisAuthToken"
          actions   = ["secretsmanager:GetSecretValue"]
          resources = [aws_secretsmanager_secret.redis_auth.arn]
        },
      ]
    }
  } : {})
}

# Pod Identity assumes the role with session tags naming the cluster, the
# namespace and the ServiceAccount; the trust policy accepts exactly this
# identity's, as the EKS user guide documents (aws:SourceArn is not among
# the keys it documents for Pod Identity). One document per identity: each
# component's, and the cluster autoscaler's (cluster-autoscaler.tf).
locals {
  pod_identities = merge(
    { for name, component in local.components : name => { namespace = var.k8s_namespace, service_account = component.service_account } },
    { "cluster-autoscaler" = local.cluster_autoscaler },
  )
}

data "aws_iam_policy_document" "pod_identity_trust" {
  for_each = local.pod_identities

  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/eks-cluster-arn"
      values   = [module.eks.cluster_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-namespace"
      values   = [each.value.namespace]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/kubernetes-service-account"
      values   = [each.value.service_account]
    }
  }
}

resource "aws_iam_role" "component" {
  for_each = local.components

  name               = "${var.name}-${each.key}${local.global_suffix}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust[each.key].json
}

data "aws_iam_policy_document" "component" {
  for_each = local.components

  dynamic "statement" {
    for_each = each.value.statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "component" {
  for_each = local.components

  name   = "${var.name}-${each.key}${local.global_suffix}"
  role   = aws_iam_role.component[each.key].id
  policy = data.aws_iam_policy_document.component[each.key].json
}

resource "aws_eks_pod_identity_association" "component" {
  for_each = local.components

  region = var.region

  cluster_name    = module.eks.cluster_name
  namespace       = var.k8s_namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.component[each.key].arn
}
