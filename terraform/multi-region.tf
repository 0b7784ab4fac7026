# Multi-region documents (docs/design.md, "Multi-region documents"): with more than
# one region in var.regions, every region is an instance of modules/region
# (regions.tf), and this joins them: the documents and idempotency tables as
# global tables (their replica blocks, storage.tf), S3 Replication between
# every pair of buckets, every region's invalidations queue subscribed to
# every other region's topic, the image replicated to every registry, and
# Route 53 latency records with health checks. With one region none of it
# exists.
locals {
  invalidation_queues = { for region in local.regions : region => "arn:aws:sqs:${region}:${local.account_id}:${local.name}-document-invalidations" }
  # Every region's deletes reach every other region.
  invalidation_routes = {
    for pair in setproduct(local.regions, local.regions) : "${pair[0]}>${pair[1]}" => { from = pair[0], to = pair[1] } if local.multi_region && pair[0] != pair[1]
  }
}

# Subscriptions live in the topic's region; the queue may be in another.
resource "aws_sns_topic_subscription" "document_invalidations" {
  for_each = local.invalidation_routes

  region               = each.value.from
  topic_arn            = local.document_events_topics[each.value.from]
  protocol             = "sqs"
  endpoint             = local.invalidation_queues[each.value.to]
  raw_message_delivery = true

  depends_on = [module.region]
}

# ---------------------------------------------------------------- content

data "aws_iam_policy_document" "replication_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  count = local.multi_region ? 1 : 0

  name               = "${local.name}-s3-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_trust.json
}

data "aws_iam_policy_document" "replication" {
  statement {
    sid       = "SourceBuckets"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [for bucket in values(local.bucket_names) : "arn:aws:s3:::${bucket}"]
  }

  statement {
    sid       = "SourceVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
    resources = [for bucket in values(local.bucket_names) : "arn:aws:s3:::${bucket}/*"]
  }

  statement {
    sid       = "DestinationObjects"
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = [for bucket in values(local.bucket_names) : "arn:aws:s3:::${bucket}/*"]
  }

  # Objects are SSE-KMS (keys.tf): S3 decrypts each with its key in the
  # source region and encrypts the replica with the destination region's.
  # Every bucket is both, so every content key is used both ways, by S3 only.
  statement {
    sid       = "ContentKeys"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = flatten([for keys in values(local.content_keys) : concat([keys.data], values(keys.tenants))])

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.regions : "s3.${region}.amazonaws.com"]
    }
  }

  # A locked object replicates with its retention and legal hold, which S3
  # reads from the source; the destination bucket has Object Lock too.
  dynamic "statement" {
    for_each = var.object_lock ? ["ObjectLock"] : []
    content {
      sid       = "SourceObjectLock"
      actions   = ["s3:GetObjectLegalHold", "s3:GetObjectRetention"]
      resources = [for bucket in values(local.bucket_names) : "arn:aws:s3:::${bucket}/*"]
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  count = local.multi_region ? 1 : 0

  name   = "${local.name}-s3-replication"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication.json
}

# Every bucket to every other: an upload lands in the region that took it,
# its item names it in every region, and a region that has the item before
# the object reads it from the others meanwhile. Delete markers replicate
# too (a removed loser's object, a deleted document's content, an orphan the
# lifecycle worker of its document's home removed: the only region that
# judges it, docs/design.md "The content sweep of several regions").
#
# Objects are SSE-KMS, which S3 replicates only when asked to
# (sse_kms_encrypted_objects), under the key each rule names in the
# destination: the destination's data key, and for a tenant with a key of its
# own (its objects are under "<tenant>/"), a rule of higher priority that
# names its key there, so that a replica is shredded with its tenant too.
locals {
  replication_rules = {
    for source in local.regions : source => concat(
      [for destination in local.regions : { id = "to-${destination}", destination = destination, prefix = null, key = local.content_keys[destination].data, priority = index(local.regions, destination) } if destination != source],
      flatten([
        for position, tenant in sort(tolist(var.tenant_kms_keys)) : [
          for destination in local.regions : {
            id          = "to-${destination}-tenant-${tenant}"
            destination = destination
            prefix      = "${tenant}/"
            key         = local.content_keys[destination].tenants[tenant]
            priority    = length(local.regions) * (position + 1) + index(local.regions, destination)
          } if destination != source
        ]
      ]),
    )
  }
}

resource "aws_s3_bucket_replication_configuration" "documents" {
  for_each = local.multi_region ? toset(local.regions) : toset([])

  region = each.key
  role   = aws_iam_role.replication[0].arn
  bucket = local.bucket_names[each.key]

  dynamic "rule" {
    for_each = local.replication_rules[each.key]
    content {
      id       = rule.value.id
      status   = "Enabled"
      priority = rule.value.priority

      filter {
        prefix = rule.value.prefix
      }

      delete_marker_replication {
        status = "Enabled"
      }

      source_selection_criteria {
        sse_kms_encrypted_objects {
          status = "Enabled"
        }
      }

      destination {
        bucket        = "arn:aws:s3:::${local.bucket_names[rule.value.destination]}"
        storage_class = "STANDARD"

        encryption_configuration {
          replica_kms_key_id = rule.value.key
        }
      }
    }
  }

  depends_on = [module.region] # the buckets and their versioning
}

# The image pushed to the primary's repository, in every region's registry.
# ECR copies only what is pushed after a region is named here: `make
# ecr-replicate` copies an earlier image into a region added later
# (docs/deploy.md, "Adding a region: its images").
resource "aws_ecr_replication_configuration" "images" {
  count = local.multi_region ? 1 : 0

  replication_configuration {
    rule {
      dynamic "destination" {
        for_each = local.secondary_regions
        content {
          region      = destination.value
          registry_id = local.account_id
        }
      }

      repository_filter {
        filter      = local.name
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}

# ---------------------------------------------------------------- routing

# Each region through its load balancer, from the internet: /health, the
# public status route the load balancer forwards (/health/ready is internal
# to each region, docs/deploy.md "What is reachable"), which answers 503 while the
# region's storage is down. Three failures in a row (30 s) and Route 53
# stops answering with that region. The record below also evaluates the
# load balancer's own target health, which is /health/ready on the nodes:
# a region whose pods are all unready or draining goes out too.
resource "aws_route53_health_check" "api" {
  for_each = local.multi_region ? toset(local.regions) : toset([])

  fqdn              = local.deployed[each.key].load_balancer.dns_name
  port              = 443
  type              = "HTTPS"
  resource_path     = "/health"
  request_interval  = 10
  failure_threshold = 3

  tags = {
    Name = "${local.name}-api-${each.key}"
  }
}

# Latency-based: each client gets the nearest region that passes its check.
resource "aws_route53_record" "api" {
  for_each = local.multi_region ? toset(local.regions) : toset([])

  zone_id         = var.dns.zone_id
  name            = var.dns.name
  type            = "A"
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.api[each.key].id

  latency_routing_policy {
    region = each.key
  }

  alias {
    name                   = local.deployed[each.key].load_balancer.dns_name
    zone_id                = local.deployed[each.key].load_balancer.zone_id
    evaluate_target_health = true
  }

  lifecycle {
    precondition {
      condition     = var.regions[0] == var.region
      error_message = "The first of regions is the primary, where orders live: it must be region."
    }
    precondition {
      condition     = var.dns != null
      error_message = "Several regions need dns: the name Route 53 routes by latency, and its hosted zone."
    }
    precondition {
      condition     = alltrue([for region in local.secondary_regions : contains(keys(var.certificate_arns), region)])
      error_message = "Several regions need certificate_arns: an ACM certificate for the API's name in each further region (ACM certificates are regional)."
    }
  }
}

# ---------------------------------------------------------------- outputs

output "region_clusters" {
  description = "Per region of several: its EKS cluster and the command that points kubectl at it."
  value = local.multi_region ? {
    for region, deployed in local.deployed : region => {
      cluster_name      = deployed.cluster_name
      configure_kubectl = "aws eks update-kubeconfig --region ${region} --name ${deployed.cluster_name} --alias ${local.name}-${region}"
      image_repository  = "${local.account_id}.dkr.ecr.${region}.amazonaws.com/${local.name}"
    }
  } : {}
}

# Per region, what `terraform output -raw k8s_env` is for the primary: the
# contents of k8s/aws.env for that region's cluster (outputs.tf).
output "region_k8s_env" {
  description = "Per region of several: the contents of k8s/aws.env for its cluster (no secret: its pods read their Redis token from REDIS_AUTH_SECRET_ID)."
  value       = local.multi_region ? local.k8s_env : {}
}

# The Redis token of each region stays in that region's Secrets Manager;
# these name the secret and the replication group, for rotating it.
output "region_redis" {
  description = "Per region of several: the Secrets Manager secret of its Redis AUTH token and its replication group (for rotation); never the token."
  value = local.multi_region ? {
    for region, deployed in local.deployed : region => {
      auth_secret_arn      = deployed.redis.auth_secret_arn
      replication_group_id = deployed.redis.replication_group_id
    }
  } : {}
}
