# With several regions, this region's side of the cross-region deletes
# (docs/design.md, "Multi-region documents"): a topic its API announces its deletes
# on, and a queue the other regions' topics deliver theirs to, for this
# region's invalidation worker. The root module subscribes every queue to
# every other region's topic. One region creates none of it.

resource "aws_sns_topic" "document_events" {
  count = local.multi_region ? 1 : 0

  region = var.region

  name              = "${var.name}-document-events"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sqs_queue" "document_invalidations_dlq" {
  count = local.multi_region ? 1 : 0

  region = var.region

  name                      = "${var.name}-document-invalidations-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum, to inspect poison messages
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "document_invalidations" {
  count = local.multi_region ? 1 : 0

  region = var.region

  name = "${var.name}-document-invalidations"
  # SSE-SQS: SNS cannot use an AWS managed KMS key to deliver into a queue.
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = 30
  receive_wait_time_seconds  = 20

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.document_invalidations_dlq[0].arn
    maxReceiveCount     = var.consumer_max_receives
  })
}

# Only the other regions' topics may send here.
data "aws_iam_policy_document" "document_invalidations" {
  count = local.multi_region ? 1 : 0

  statement {
    sid       = "TheOtherRegionsTopicsOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.document_invalidations[0].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for region in local.other_regions : var.document_events_topic_arns[region]]
    }
  }
}

resource "aws_sqs_queue_policy" "document_invalidations" {
  count = local.multi_region ? 1 : 0

  region = var.region

  queue_url = aws_sqs_queue.document_invalidations[0].id
  policy    = data.aws_iam_policy_document.document_invalidations[0].json
}
