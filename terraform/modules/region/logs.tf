# Records, each one variable away:
#   alb_access_logs (on by default)  every request the load balancer saw, in S3 (90 days):
#                                    what a security review or an incident asks for first
#   vpc_flow_logs (off by default)   every connection in the VPC, in CloudWatch Logs (network.tf)

# The Elastic Load Balancing account of the region, which writes the logs in
# regions older than August 2022; newer regions use the log-delivery service
# principal. The policy names both, so it works in either.
data "aws_elb_service_account" "this" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region
}

resource "aws_s3_bucket" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket        = "${var.name}-alb-logs-${var.account_id}${local.global_suffix}"
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket                  = aws_s3_bucket.alb_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3: the only encryption load balancer access logs support.
resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = 90
    }
  }
}

data "aws_iam_policy_document" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  statement {
    sid       = "LoadBalancerWritesLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs[0].arn}/AWSLogs/${var.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.this[0].arn]
    }
  }

  statement {
    sid       = "LogDeliveryWritesLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.alb_logs[0].arn}/AWSLogs/${var.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.alb_logs[0].arn, "${aws_s3_bucket.alb_logs[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  region = var.region

  bucket = aws_s3_bucket.alb_logs[0].id
  policy = data.aws_iam_policy_document.alb_logs[0].json

  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}
