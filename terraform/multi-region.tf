# Multi-region documents (README, "Multi-region documents"): with more than
# one region in var.regions, the document path is deployed in each. This
# region (var.region, the primary, where orders live) keeps everything the
# other files build; every further region gets modules/region (network,
# cluster, load balancer, Redis, bucket, its invalidations topic and queue).
# What joins them is here: the documents and idempotency tables as global
# tables (their replica blocks, storage.tf), S3 Replication between every
# pair of buckets, every region's queue subscribed to every other region's
# topic, the image replicated to every registry, and Route 53 latency
# records with health checks. With one region none of it exists.

variable "regions" {
  description = "Regions of the document path, the primary first (it must be var.region: orders live there); [] or one region: var.region alone."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.regions) == length(distinct(var.regions)) && alltrue([for region in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", region))])
    error_message = "Region names (like eu-west-1), each once."
  }
}

variable "dns" {
  description = "With several regions: the API's DNS name and the Route 53 hosted zone it is in (latency records, health checks, each region's certificate)."
  type        = object({ zone_id = string, name = string })
  default     = null
}

locals {
  regions           = length(var.regions) > 0 ? var.regions : [var.region]
  multi_region      = length(local.regions) > 1
  secondary_regions = slice(local.regions, 1, length(local.regions))
  # The tables every region has; orders and their consumer stay in the primary.
  global_tables = ["documents", "idempotency-keys"]
  bucket_names = {
    for region in local.regions : region => region == var.region ? "${local.name}-documents-${local.account_id}" : "${local.name}-documents-${local.account_id}-${region}"
  }
  document_events_topics = { for region in local.regions : region => "arn:aws:sns:${region}:${local.account_id}:${local.name}-document-events" }
  invalidation_queues    = { for region in local.regions : region => "arn:aws:sqs:${region}:${local.account_id}:${local.name}-document-invalidations" }
  # Every region's deletes reach every other region.
  invalidation_routes = {
    for pair in setproduct(local.regions, local.regions) : "${pair[0]}>${pair[1]}" => { from = pair[0], to = pair[1] } if local.multi_region && pair[0] != pair[1]
  }
  load_balancers = merge(
    { (var.region) = { dns_name = aws_lb.api.dns_name, zone_id = aws_lb.api.zone_id } },
    { for region, deployed in module.region : region => deployed.load_balancer },
  )
  cluster_names = merge({ (var.region) = module.eks.cluster_name }, { for region, deployed in module.region : region => deployed.cluster_name })
}

module "region" {
  source   = "./modules/region"
  for_each = toset(local.secondary_regions)

  region       = each.key
  regions      = local.regions
  name         = local.name
  account_id   = local.account_id
  bucket_names = local.bucket_names
  table_names  = { for table in local.global_tables : table => aws_dynamodb_table.this[table].name }
  orders = {
    table_arns = [aws_dynamodb_table.this["orders"].arn, aws_dynamodb_table.this["order-consumer"].arn]
    topic_arn  = aws_sns_topic.order_events.arn
    queue_arns = [aws_sqs_queue.order_events.arn, aws_sqs_queue.order_events_dlq.arn]
  }
  dns = var.dns

  vpc_cidr              = var.vpc_cidr
  kubernetes_version    = var.kubernetes_version
  node_instance_types   = var.node_instance_types
  node_count            = var.node_count
  node_port             = var.node_port
  k8s_namespace         = var.k8s_namespace
  k8s_service_account   = var.k8s_service_account
  allowed_cidrs         = var.allowed_cidrs
  admin_cidrs           = var.admin_cidrs
  redis_node_type       = var.redis_node_type
  consumer_max_receives = var.consumer_max_receives
  deletion_protection   = var.deletion_protection
}

# ---------------------------------------------------------------- the primary's invalidations

resource "aws_sns_topic" "document_events" {
  count = local.multi_region ? 1 : 0

  name              = "${local.name}-document-events"
  kms_master_key_id = "alias/aws/sns"

  lifecycle {
    precondition {
      condition     = var.regions[0] == var.region
      error_message = "The first of regions is the primary, where orders live: it must be region."
    }
    precondition {
      condition     = var.dns != null && var.certificate_arn != null
      error_message = "Several regions need dns (the name Route 53 routes by latency, and its zone) and certificate_arn (the primary's certificate for that name)."
    }
  }
}

resource "aws_sqs_queue" "document_invalidations_dlq" {
  count = local.multi_region ? 1 : 0

  name                      = "${local.name}-document-invalidations-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "document_invalidations" {
  count = local.multi_region ? 1 : 0

  name                       = "${local.name}-document-invalidations"
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = 30
  receive_wait_time_seconds  = 20

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.document_invalidations_dlq[0].arn
    maxReceiveCount     = var.consumer_max_receives
  })
}

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
      values   = [for region in local.secondary_regions : local.document_events_topics[region]]
    }
  }
}

resource "aws_sqs_queue_policy" "document_invalidations" {
  count = local.multi_region ? 1 : 0

  queue_url = aws_sqs_queue.document_invalidations[0].id
  policy    = data.aws_iam_policy_document.document_invalidations[0].json
}

# Subscriptions live in the topic's region; the queue may be in another.
resource "aws_sns_topic_subscription" "document_invalidations" {
  for_each = local.invalidation_routes

  region               = each.value.from
  topic_arn            = local.document_events_topics[each.value.from]
  protocol             = "sqs"
  endpoint             = local.invalidation_queues[each.value.to]
  raw_message_delivery = true

  depends_on = [aws_sns_topic.document_events, aws_sqs_queue_policy.document_invalidations, module.region]
}

# The primary's pods, on top of iam.tf: the other regions' replicas (writes
# go to each key's home), the other buckets for reading, this region's topic
# and queue.
data "aws_iam_policy_document" "app_multi_region" {
  count = local.multi_region ? 1 : 0

  statement {
    sid = "OtherRegionsTables"
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = flatten([
      for region in local.secondary_regions : [
        for table in local.global_tables : [
          "arn:aws:dynamodb:${region}:${local.account_id}:table/${aws_dynamodb_table.this[table].name}",
          "arn:aws:dynamodb:${region}:${local.account_id}:table/${aws_dynamodb_table.this[table].name}/index/*",
        ]
      ]
    ])
  }

  statement {
    sid       = "OtherRegionsBuckets"
    actions   = ["s3:ListBucket"]
    resources = [for region in local.secondary_regions : "arn:aws:s3:::${local.bucket_names[region]}"]
  }

  statement {
    sid       = "OtherRegionsObjects"
    actions   = ["s3:GetObject"]
    resources = [for region in local.secondary_regions : "arn:aws:s3:::${local.bucket_names[region]}/*"]
  }

  statement {
    sid       = "PublishDeletes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.document_events[0].arn]
  }

  statement {
    sid = "ConsumeInvalidations"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.document_invalidations[0].arn]
  }
}

resource "aws_iam_role_policy" "app_multi_region" {
  count = local.multi_region ? 1 : 0

  name   = "${local.name}-app-multi-region"
  role   = aws_iam_role.app.id
  policy = data.aws_iam_policy_document.app_multi_region[0].json
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
# too (a removed loser's object, a deleted document's content); the lifecycle
# worker of each region removes whatever is left.
resource "aws_s3_bucket_replication_configuration" "documents" {
  for_each = local.multi_region ? toset(local.regions) : toset([])

  region = each.key
  role   = aws_iam_role.replication[0].arn
  bucket = local.bucket_names[each.key]

  dynamic "rule" {
    for_each = [for region in local.regions : region if region != each.key]
    content {
      id       = "to-${rule.value}"
      status   = "Enabled"
      priority = index(local.regions, rule.value)

      filter {}

      delete_marker_replication {
        status = "Enabled"
      }

      destination {
        bucket        = "arn:aws:s3:::${local.bucket_names[rule.value]}"
        storage_class = "STANDARD"
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.documents, module.region]
}

# The image pushed to the primary's repository, in every region's registry.
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

# Each region's readiness through its load balancer: storage answering and
# the pods up. Three failures in a row (30 s) and Route 53 stops answering
# with that region.
resource "aws_route53_health_check" "api" {
  for_each = local.multi_region ? toset(local.regions) : toset([])

  fqdn              = local.load_balancers[each.key].dns_name
  port              = 443
  type              = "HTTPS"
  resource_path     = "/health/ready"
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
    name                   = local.load_balancers[each.key].dns_name
    zone_id                = local.load_balancers[each.key].zone_id
    evaluate_target_health = true
  }
}

# ---------------------------------------------------------------- outputs

output "region_clusters" {
  description = "Per region of several: its EKS cluster and the command that points kubectl at it."
  value = local.multi_region ? {
    for region in local.regions : region => {
      cluster_name      = local.cluster_names[region]
      configure_kubectl = "aws eks update-kubeconfig --region ${region} --name ${local.cluster_names[region]} --alias ${local.name}-${region}"
      image_repository  = "${local.account_id}.dkr.ecr.${region}.amazonaws.com/${local.name}"
    }
  } : {}
}

# Per region, what `terraform output -raw k8s_env` is for one region: the
# contents of k8s/aws.env for that region's cluster.
output "region_k8s_env" {
  description = "Per region of several: the contents of k8s/aws.env for its cluster."
  value = local.multi_region ? {
    for region in local.regions : region => join("", [
      "AWS_REGION=${region}\n",
      "DOCUMENTS_TABLE=${aws_dynamodb_table.this["documents"].name}\n",
      "IDEMPOTENCY_TABLE=${aws_dynamodb_table.this["idempotency-keys"].name}\n",
      "ORDERS_TABLE=${aws_dynamodb_table.this["orders"].name}\n",
      "CONSUMER_TABLE=${aws_dynamodb_table.this["order-consumer"].name}\n",
      "DOCUMENTS_BUCKET=${local.bucket_names[region]}\n",
      "ORDER_EVENTS_TOPIC_ARN=${aws_sns_topic.order_events.arn}\n",
      "ORDER_EVENTS_QUEUE=${aws_sqs_queue.order_events.name}\n",
      "ORDER_EVENTS_DLQ=${aws_sqs_queue.order_events_dlq.name}\n",
      "CONSUMER_MAX_RECEIVES=${var.consumer_max_receives}\n",
      "DOCUMENT_REGIONS=${join(",", [for other in local.regions : "${other}=${local.bucket_names[other]}"])}\n",
      "DOCUMENT_EVENTS_TOPIC_ARN=${local.document_events_topics[region]}\n",
      "DOCUMENT_INVALIDATIONS_QUEUE=${local.name}-document-invalidations\n",
      "DOCUMENT_INVALIDATIONS_DLQ=${local.name}-document-invalidations-dlq\n",
    ])
  } : {}
}

output "region_redis_urls" {
  description = "Per region of several: REDIS_URL for its docsvc-secrets Secret."
  value = local.multi_region ? merge(
    { (var.region) = "rediss://:${random_password.redis_auth.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379" },
    { for region, deployed in module.region : region => deployed.redis_url },
  ) : {}
  sensitive = true
}
