# The region's own stores: its documents bucket (replicated to and from the
# others by the root module), its Redis, and its side of the invalidations
# (a topic for its deletes, a queue for the others'). The tables are the
# root module's global tables, replicated here.

resource "aws_s3_bucket" "documents" {
  region        = var.region
  bucket        = var.bucket_names[var.region]
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "documents" {
  region                  = var.region
  bucket                  = aws_s3_bucket.documents.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "documents" {
  region = var.region
  bucket = aws_s3_bucket.documents.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "documents" {
  region = var.region
  bucket = aws_s3_bucket.documents.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# S3 Replication needs versioning on both sides.
resource "aws_s3_bucket_versioning" "documents" {
  region = var.region
  bucket = aws_s3_bucket.documents.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "documents" {
  region = var.region
  bucket = aws_s3_bucket.documents.id

  rule {
    id     = "expire-deleted-content"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.documents]
}

data "aws_iam_policy_document" "documents_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.documents.arn, "${aws_s3_bucket.documents.arn}/*"]

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

resource "aws_s3_bucket_policy" "documents" {
  region     = var.region
  bucket     = aws_s3_bucket.documents.id
  policy     = data.aws_iam_policy_document.documents_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.documents]
}

# ---------------------------------------------------------------- Redis

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "redis_auth" {
  region                  = var.region
  name_prefix             = "${var.name}-redis-auth-"
  description             = "AUTH token of the ${var.name} ElastiCache replication group in ${var.region}"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  region        = var.region
  secret_id     = aws_secretsmanager_secret.redis_auth.id
  secret_string = random_password.redis_auth.result
}

resource "aws_elasticache_subnet_group" "redis" {
  region     = var.region
  name       = "${var.name}-redis"
  subnet_ids = module.vpc.private_subnets
}

resource "aws_security_group" "redis" {
  region      = var.region
  name_prefix = "${var.name}-redis-"
  description = "Redis, from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "Redis TLS from the EKS nodes"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "redis" {
  region               = var.region
  replication_group_id = "${var.name}-redis"
  description          = "${var.name} cache and rate limits in ${var.region}"

  engine               = "redis"
  engine_version       = "7.1"
  parameter_group_name = "default.redis7"
  node_type            = var.redis_node_type
  port                 = 6379

  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [aws_security_group.redis.id]

  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  auth_token                 = aws_secretsmanager_secret_version.redis_auth.secret_string

  snapshot_retention_limit = 1
}

# ---------------------------------------------------------------- invalidations

# This region's deletes, for the other regions' caches (document.deleted).
resource "aws_sns_topic" "document_events" {
  region            = var.region
  name              = "${var.name}-document-events"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sqs_queue" "document_invalidations_dlq" {
  region                    = var.region
  name                      = "${var.name}-document-invalidations-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

# The other regions' deletes, for the invalidation worker of this one.
resource "aws_sqs_queue" "document_invalidations" {
  region                     = var.region
  name                       = "${var.name}-document-invalidations"
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = 30
  receive_wait_time_seconds  = 20

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.document_invalidations_dlq.arn
    maxReceiveCount     = var.consumer_max_receives
  })
}

data "aws_iam_policy_document" "document_invalidations" {
  statement {
    sid       = "TheOtherRegionsTopicsOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.document_invalidations.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for region in local.other_regions : local.topic_arns[region]]
    }
  }
}

resource "aws_sqs_queue_policy" "document_invalidations" {
  region    = var.region
  queue_url = aws_sqs_queue.document_invalidations.id
  policy    = data.aws_iam_policy_document.document_invalidations.json
}
