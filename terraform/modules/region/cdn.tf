# CloudFront in front of this region's documents bucket (issue 21): direct
# links (GET /documents/{id}/link) are CloudFront signed URLs on this
# distribution, which serves only URLs signed with a key of its trusted key
# group, and reads the bucket with origin access control (OAC, SigV4). The
# bucket stays private: its public access block is unchanged, and its policy
# lets this distribution alone GetObject (storage.tf). docs/deploy.md has the
# decisions and the price.
#
# The signing key pair is the operator's (make cdn-key): the public key comes
# in as var.cdn_public_key_pem, the private key goes straight into the
# secret below and is never in the terraform state, where whoever reads the
# state could sign any document for any length of time.
locals {
  cdn = var.cdn ? 1 : 0
  # The headers a link sets through S3 (src/documents/links.ts): forwarded to S3, which applies them only to
  # a signed request (OAC signs it), and part of the cache key, so two dispositions of one object never collide.
  cdn_response_parameters = ["response-content-disposition", "response-content-type"]
}

resource "aws_cloudfront_origin_access_control" "documents" {
  count = local.cdn

  name                              = "${var.name}-documents-${var.region}"
  description                       = "The ${var.name} documents bucket in ${var.region}, read by its distribution only"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_public_key" "links" {
  count = local.cdn

  name_prefix = "${var.name}-links-${var.region}-"
  comment     = "Verifies the direct links the ${var.name} API signs (private key: the cdn_private_key secret)"
  encoded_key = var.cdn_public_key_pem

  lifecycle {
    # A new key is added before the old one leaves the key group: links signed with either verify meanwhile.
    create_before_destroy = true
  }
}

resource "aws_cloudfront_key_group" "links" {
  count = local.cdn

  name    = "${var.name}-links-${var.region}"
  comment = "Keys whose signed URLs the ${var.name} documents distribution in ${var.region} serves"
  items   = [aws_cloudfront_public_key.links[0].id]
}

# Content at a key never changes (a new upload is a new key: tenant/id/upload), so an edge may keep it long;
# what it serves is still behind a signed URL, which the API mints only for a live document.
resource "aws_cloudfront_cache_policy" "documents" {
  count = local.cdn

  name        = "${var.name}-documents-${var.region}"
  comment     = "Immutable objects; the cache key is the path and the two response-* parameters"
  min_ttl     = 0
  default_ttl = 86400
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = false # stored bytes are served as stored: no re-encoding of documents
    enable_accept_encoding_gzip   = false

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "whitelist"
      query_strings {
        items = local.cdn_response_parameters
      }
    }
  }
}

resource "aws_cloudfront_distribution" "documents" {
  count = local.cdn

  enabled         = true
  comment         = "${var.name} documents in ${var.region}: signed URLs only"
  is_ipv6_enabled = true
  http_version    = "http2and3"
  price_class     = var.cdn_price_class

  origin {
    origin_id                = "documents"
    domain_name              = aws_s3_bucket.documents.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.documents[0].id
  }

  default_cache_behavior {
    target_origin_id       = "documents"
    viewer_protocol_policy = "https-only"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    compress               = false

    trusted_key_groups = [aws_cloudfront_key_group.links[0].id]
    # What the cache key holds CloudFront also sends to the origin: the two response-* parameters
    # reach S3 with no origin request policy (the managed ones would drop them).
    cache_policy_id = aws_cloudfront_cache_policy.documents[0].id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  # With a name of your own (cdn_domain), its ACM certificate and TLS 1.2 at least. On the cloudfront.net
  # name, CloudFront's certificate, whose security policy AWS fixes at TLSv1 (clients still negotiate 1.2+).
  aliases = var.cdn_domain == null ? [] : [var.cdn_domain.name]

  viewer_certificate {
    cloudfront_default_certificate = var.cdn_domain == null
    acm_certificate_arn            = var.cdn_domain == null ? null : var.cdn_domain.certificate_arn
    ssl_support_method             = var.cdn_domain == null ? null : "sni-only"
    minimum_protocol_version       = var.cdn_domain == null ? "TLSv1" : "TLSv1.2_2021"
  }

  lifecycle {
    precondition {
      condition     = var.cdn_public_key_pem != null
      error_message = "cdn = true needs cdn_public_key_pem: run make cdn-key (docs/deploy.md), or set cdn = false."
    }
  }
}

# The private key of the pair, put here by make cdn-key-upload (no version from terraform); the API
# reads it at start (DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID), with its own role.
resource "aws_secretsmanager_secret" "cdn_private_key" {
  count = local.cdn

  region = var.region

  name_prefix             = "${var.name}-cdn-private-key-"
  description             = "Private key (PEM, RSA 2048) that signs the ${var.name} direct links for CloudFront in ${var.region}"
  recovery_window_in_days = 7
}
