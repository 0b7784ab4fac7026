# Document content above INLINE_CONTENT_MAX_BYTES.
resource "aws_s3_bucket" "documents" {
  region = var.region

  # Bucket names are global: the root module makes them (the account id keeps them ours).
  bucket        = var.bucket_names[var.region]
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "documents" {
  region = var.region

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
    object_ownership = "BucketOwnerEnforced" # no ACLs at all
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "documents" {
  region = var.region

  bucket = aws_s3_bucket.documents.id
  # The region's key (keys.tf in the root) for whatever the service writes
  # without naming one, and the S3 Bucket Key, which spares KMS a request per
  # object. Objects written before keep the encryption they had.
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.content_keys[var.region].data
    }
    bucket_key_enabled = true
  }
}

# Versioning undoes an accidental overwrite or delete outside the service,
# and S3 Replication (several regions) needs it on both sides.
resource "aws_s3_bucket_versioning" "documents" {
  region = var.region

  bucket = aws_s3_bucket.documents.id
  versioning_configuration {
    status = "Enabled"
  }
}

# Object Lock (object_lock), so that a document's retention and legal hold
# hold at the storage layer too: the service sets them on each object
# (S3_OBJECT_LOCK_MODE), so the bucket has no default retention. Versioning,
# which Object Lock needs, is on above. Turned on through this configuration,
# not the bucket's object_lock_enabled argument, which would replace an
# existing bucket: AWS accepts it on an existing versioned bucket too. It
# cannot be turned off (docs/encryption-and-retention.md).
resource "aws_s3_bucket_object_lock_configuration" "documents" {
  count = var.object_lock ? 1 : 0

  region = var.region

  bucket              = aws_s3_bucket.documents.id
  object_lock_enabled = "Enabled"

  depends_on = [aws_s3_bucket_versioning.documents]
}

resource "aws_s3_bucket_lifecycle_configuration" "documents" {
  region = var.region

  bucket = aws_s3_bucket.documents.id

  rule {
    id     = "expire-deleted-content"
    status = "Enabled"
    filter {}

    # A deleted document's bytes are really gone 30 days after the delete
    # (a version S3 Object Lock retains or holds: once it no longer does).
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    expiration {
      expired_object_delete_marker = true
    }
    # The backstop for multipart uploads nobody aborted: longer than a
    # resumable upload lives (UPLOAD_EXPIRY_SECONDS, under 2 days).
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }

  depends_on = [aws_s3_bucket_versioning.documents]
}

data "aws_iam_policy_document" "documents_bucket" {
  # With CloudFront (cdn.tf): its read of the objects, for this distribution alone.
  source_policy_documents = var.cdn ? [data.aws_iam_policy_document.documents_bucket_cdn[0].json] : null

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

# OAC signs CloudFront's requests as the service principal; the SourceArn
# condition makes that this region's distribution and no other CloudFront
# distribution (another account's included). Objects only, GetObject only:
# no listing, no writes. Granted to a service, not to everyone, so the
# public access block (restrict_public_buckets) still holds.
data "aws_iam_policy_document" "documents_bucket_cdn" {
  count = local.cdn

  statement {
    sid       = "CloudFrontReadsObjects"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.documents.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.documents[0].arn]
    }
  }
}

resource "aws_s3_bucket_policy" "documents" {
  region = var.region

  bucket = aws_s3_bucket.documents.id
  policy = data.aws_iam_policy_document.documents_bucket.json

  # A policy put before the public access block could be rejected or exposed.
  depends_on = [aws_s3_bucket_public_access_block.documents]
}
