# One AWS identity per process: each Deployment runs as a ServiceAccount of
# its own (k8s/serviceaccounts.yaml), which EKS Pod Identity binds to a role
# of its own, allowed only the calls that process's code makes, on its own
# resources. test/infra/iam.test.ts derives every list below from the code
# each entry point loads (src/server.ts, src/worker.ts, src/consumer.ts,
# src/lifecycle-worker.ts) and
# fails on any difference, so a new call needs its permission here, and a
# permission nothing calls any more goes. No Create*/Delete* of tables,
# buckets, topics or queues: terraform owns those.
locals {
  components = {
    api = {
      service_account = "docsvc-api"
      statements = [
        {
          sid     = "Tables"
          actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            "${aws_dynamodb_table.this["documents"].arn}",
            "${aws_dynamodb_table.this["documents"].arn}/index/*",
            "${aws_dynamodb_table.this["idempotency-keys"].arn}",
            "${aws_dynamodb_table.this["orders"].arn}",
            "${aws_dynamodb_table.this["orders"].arn}/index/*",
          ]
        },
        {
          # PutObject covers the parts of a multipart upload; a failed one is aborted.
          sid       = "DocumentObjects"
          actions   = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
          resources = ["${aws_s3_bucket.documents.arn}/*"]
        },
        {
          # HeadBucket (readiness) is authorised as ListBucket; it also makes a missing key 404, not 403.
          sid       = "DocumentBucket"
          actions   = ["s3:ListBucket"]
          resources = ["${aws_s3_bucket.documents.arn}"]
        },
        {
          sid       = "PublishOrderEvents"
          actions   = ["sns:GetTopicAttributes", "sns:Publish"]
          resources = ["${aws_sns_topic.order_events.arn}"]
        },
        {
          # Read once at start (REDIS_AUTH_SECRET_ID): the token never sits in Kubernetes.
          sid       = "RedisAuthToken"
          actions   = ["secretsmanager:GetSecretValue"]
          resources = ["${aws_secretsmanager_secret.redis_auth.arn}"]
        },
      ]
    }
    relay = {
      service_account = "docsvc-relay"
      statements = [
        {
          sid     = "Tables"
          actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            "${aws_dynamodb_table.this["orders"].arn}",
            "${aws_dynamodb_table.this["orders"].arn}/index/*",
          ]
        },
        {
          sid       = "PublishOrderEvents"
          actions   = ["sns:Publish"]
          resources = ["${aws_sns_topic.order_events.arn}"]
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
          sid     = "Tables"
          actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            "${aws_dynamodb_table.this["order-consumer"].arn}",
            "${aws_dynamodb_table.this["orders"].arn}",
            "${aws_dynamodb_table.this["orders"].arn}/index/*",
          ]
        },
        {
          sid       = "ConsumeOrderEvents"
          actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]
          resources = ["${aws_sqs_queue.order_events.arn}"]
        },
        {
          # Read-only: the depth of the dead-letter queue is worth a metric.
          sid       = "InspectDeadLetters"
          actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
          resources = ["${aws_sqs_queue.order_events_dlq.arn}"]
        },
      ]
    }
    lifecycle = {
      service_account = "docsvc-lifecycle"
      statements = [
        {
          # The documents, their tombstones index, and the sweep's lease item.
          sid     = "Tables"
          actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]
          resources = [
            "${aws_dynamodb_table.this["documents"].arn}",
            "${aws_dynamodb_table.this["documents"].arn}/index/*",
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
          resources = ["${aws_s3_bucket.documents.arn}"]
        },
      ]
    }
  }
}

# Pod Identity assumes the role with session tags naming the cluster, the
# namespace and the ServiceAccount; the trust policy accepts exactly this
# component's, as the EKS user guide documents (aws:SourceArn is not among
# the keys it documents for Pod Identity).
data "aws_iam_policy_document" "pod_identity_trust" {
  for_each = local.components

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
      values   = [var.k8s_namespace]
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

  name               = "${local.name}-${each.key}"
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

  name   = "${local.name}-${each.key}"
  role   = aws_iam_role.component[each.key].id
  policy = data.aws_iam_policy_document.component[each.key].json
}

resource "aws_eks_pod_identity_association" "component" {
  for_each = local.components

  cluster_name    = module.eks.cluster_name
  namespace       = var.k8s_namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.component[each.key].arn
}
