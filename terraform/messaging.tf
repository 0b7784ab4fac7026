# Order events: the relay publishes to the topic; the consumer reads the queue.
resource "aws_sns_topic" "order_events" {
  name              = "${local.name}-order-events"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sqs_queue" "order_events_dlq" {
  name                      = "${local.name}-order-events-consumer-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum, to inspect poison messages
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "order_events" {
  name = "${local.name}-order-events-consumer"
  # SSE-SQS rather than the aws/sqs KMS key: SNS cannot use an AWS managed key
  # to deliver into an encrypted queue.
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = 30
  receive_wait_time_seconds  = 20 # long polling: fewer empty receives

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.order_events_dlq.arn
    maxReceiveCount     = var.consumer_max_receives
  })
}

# Only this queue may use the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "order_events_dlq" {
  queue_url = aws_sqs_queue.order_events_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.order_events.arn]
  })
}

data "aws_iam_policy_document" "order_events_queue" {
  statement {
    sid       = "AllowTheTopicOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.order_events.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.order_events.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "order_events" {
  queue_url = aws_sqs_queue.order_events.id
  policy    = data.aws_iam_policy_document.order_events_queue.json
}

resource "aws_sns_topic_subscription" "order_events" {
  topic_arn = aws_sns_topic.order_events.arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.order_events.arn
  # Raw delivery: the SQS body is the CloudEvent itself and the SNS message
  # attribute `type` arrives as an SQS message attribute, as in compose.
  raw_message_delivery = true

  depends_on = [aws_sqs_queue_policy.order_events]
}
