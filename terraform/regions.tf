# Every region of the service is one instance of modules/region, built the
# same way: the primary (var.region, where orders live) under the key
# "primary", and each further region of var.regions under its name
# (docs/design.md, "Multi-region documents"; multi-region.tf joins them). The
# primary's key is a constant so that moved.tf can name where the resources
# of a single-region deployment went. What every region shares stays here:
# the tables (storage.tf), orders (messaging.tf), the image repository.
locals {
  # The primary first; one region (the default): var.region alone.
  regions           = distinct(concat([var.region], var.regions))
  multi_region      = length(local.regions) > 1
  secondary_regions = slice(local.regions, 1, length(local.regions))
  # The tables every region has a replica of; orders and their consumer stay in the primary.
  global_tables = ["documents", "idempotency-keys"]
  global_table_arns = {
    for table in local.global_tables : table => {
      for region in local.regions : region => region == var.region ? aws_dynamodb_table.this[table].arn : "arn:aws:dynamodb:${region}:${local.account_id}:table/${aws_dynamodb_table.this[table].name}"
    }
  }
  # Bucket names are global: the primary's as it always was, the others' with their region.
  bucket_names = {
    for region in local.regions : region => region == var.region ? "${local.name}-documents-${local.account_id}" : "${local.name}-documents-${local.account_id}-${region}"
  }
  certificates = merge(var.certificate_arns, { (var.region) = var.certificate_arn })
  # Each region's topic for its deletes (modules/region/invalidations.tf), named here for the others.
  document_events_topics = { for region in local.regions : region => "arn:aws:sns:${region}:${local.account_id}:${local.name}-document-events" }
  # Every region's module instance, by region.
  deployed = { for key, region in module.region : (key == "primary" ? var.region : key) => region }
}

module "region" {
  source   = "./modules/region"
  for_each = { for region in local.regions : (region == var.region ? "primary" : region) => region }

  region            = each.value
  regions           = local.regions
  name              = local.name
  account_id        = local.account_id
  bucket_names      = local.bucket_names
  global_table_arns = local.global_table_arns
  orders = {
    table_arn             = aws_dynamodb_table.this["orders"].arn
    consumer_table_arn    = aws_dynamodb_table.this["order-consumer"].arn
    topic_arn             = aws_sns_topic.order_events.arn
    queue_arn             = aws_sqs_queue.order_events.arn
    dead_letter_queue_arn = aws_sqs_queue.order_events_dlq.arn
  }
  document_events_topic_arns = local.document_events_topics
  content_keys               = local.content_keys
  certificate_arn            = lookup(local.certificates, each.value, "")

  # The same settings in every region.
  vpc_cidr              = var.vpc_cidr
  kubernetes_version    = var.kubernetes_version
  node_instance_types   = var.node_instance_types
  node_count            = var.node_count
  node_volume_size      = var.node_volume_size
  node_port             = var.node_port
  k8s_namespace         = var.k8s_namespace
  allowed_cidrs         = var.allowed_cidrs
  admin_cidrs           = var.admin_cidrs
  plain_http            = var.plain_http
  plain_http_cidrs      = var.plain_http_cidrs
  alb_access_logs       = var.alb_access_logs
  vpc_flow_logs         = var.vpc_flow_logs
  waf                   = var.waf
  waf_rate_limit        = var.waf_rate_limit
  waf_logging           = var.waf_logging
  redis_node_type       = var.redis_node_type
  consumer_max_receives = var.consumer_max_receives
  deletion_protection   = var.deletion_protection
  object_lock           = var.object_lock
  cdn                   = var.cdn
  cdn_public_key_pem    = var.cdn_public_key_pem
  cdn_price_class       = var.cdn_price_class
  cdn_domain            = var.cdn_domain
}
