# The pods' role in this region, given by EKS Pod Identity to the service's
# ServiceAccount in this region's cluster only. What it may call: the global
# tables in every region (writes go to each key's home), this region's bucket
# and the others' for reading (content not replicated yet), its own topic and
# queue, and the primary's orders resources.
data "aws_iam_policy_document" "app_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [module.eks.cluster_arn]
    }
  }
}

resource "aws_iam_role" "app" {
  name               = "${var.name}-app-${var.region}"
  assume_role_policy = data.aws_iam_policy_document.app_trust.json
}

locals {
  table_arns = flatten([
    for region in var.regions : [
      for table in values(var.table_names) : ["arn:aws:dynamodb:${region}:${var.account_id}:table/${table}", "arn:aws:dynamodb:${region}:${var.account_id}:table/${table}/index/*"]
    ]
  ])
  other_bucket_arns = [for region in local.other_regions : "arn:aws:s3:::${var.bucket_names[region]}"]
}

data "aws_iam_policy_document" "app" {
  statement {
    sid = "Tables"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = concat(local.table_arns, var.orders.table_arns, [for arn in var.orders.table_arns : "${arn}/index/*"])
  }

  statement {
    sid       = "DocumentObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.documents.arn}/*"]
  }

  statement {
    # Without ListBucket a missing key is 403, not 404: the fallback must tell "not here yet" from "refused".
    sid       = "DocumentBuckets"
    actions   = ["s3:ListBucket"]
    resources = concat([aws_s3_bucket.documents.arn], local.other_bucket_arns)
  }

  statement {
    sid       = "OtherRegionsObjects"
    actions   = ["s3:GetObject"]
    resources = [for arn in local.other_bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "Publish"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.document_events.arn, var.orders.topic_arn]
  }

  statement {
    sid = "Consume"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = concat([aws_sqs_queue.document_invalidations.arn], var.orders.queue_arns)
  }
}

resource "aws_iam_role_policy" "app" {
  name   = "${var.name}-app-${var.region}"
  role   = aws_iam_role.app.id
  policy = data.aws_iam_policy_document.app.json
}

resource "aws_eks_pod_identity_association" "app" {
  region          = var.region
  cluster_name    = module.eks.cluster_name
  namespace       = var.k8s_namespace
  service_account = var.k8s_service_account
  role_arn        = aws_iam_role.app.arn
}
