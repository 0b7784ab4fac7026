output "load_balancer_dns_name" {
  description = "DNS name of the load balancer: point the certificate's domain at it (a CNAME or an alias record)."
  value       = module.region["primary"].load_balancer.dns_name
}

output "api_url" {
  description = "Base URL of the API through the load balancer (its certificate names your domain, not this host: curl --connect-to, or use the domain once its DNS points here)."
  value       = "https://${module.region["primary"].load_balancer.dns_name}"
}

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.region["primary"].cluster_name
}

output "configure_kubectl" {
  description = "Command that points kubectl at the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.region["primary"].cluster_name}"
}

output "ecr_repository_url" {
  description = "Repository to push the image to (tags are immutable)."
  value       = aws_ecr_repository.app.repository_url
}

output "component_role_arns" {
  description = "IAM role of each component (api, relay, consumer, lifecycle), which its pods get through EKS Pod Identity."
  value       = module.region["primary"].component_role_arns
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret holding the Redis AUTH token (the API reads it at start)."
  value       = module.region["primary"].redis.auth_secret_arn
}

output "cdn_private_key_secret_arns" {
  description = "With cdn: the secret of the links' private key in each region, by region (make cdn-key-upload puts the key there); {} without."
  value       = var.cdn ? { for region, deployed in local.deployed : region => deployed.cdn.private_key_secret } : {}
}

output "redis_replication_group_id" {
  description = "ElastiCache replication group, for rotating its AUTH token."
  value       = module.region["primary"].redis.replication_group_id
}

# The account-specific part of the service's configuration, as the env file
# that k8s/kustomization.yaml turns into the ConfigMap, per region (one
# region: the primary alone; multi-region.tf prints every region's):
#   terraform output -raw k8s_env > ../k8s/aws.env
# k8s/aws.env.example is what it prints with the variable defaults;
# test/infra evaluates this to check that they agree. No secret: the pods
# read the Redis token from REDIS_AUTH_SECRET_ID with their own role.
locals {
  k8s_env = {
    for region, deployed in local.deployed : region => join("", concat([
      "AWS_REGION=${region}\n",
      "DOCUMENTS_TABLE=${aws_dynamodb_table.this["documents"].name}\n",
      "IDEMPOTENCY_TABLE=${aws_dynamodb_table.this["idempotency-keys"].name}\n",
      "ORDERS_TABLE=${aws_dynamodb_table.this["orders"].name}\n",
      "CONSUMER_TABLE=${aws_dynamodb_table.this["order-consumer"].name}\n",
      "DOCUMENTS_BUCKET=${local.bucket_names[region]}\n",
      "ORDER_EVENTS_TOPIC_ARN=${aws_sns_topic.order_events.arn}\n",
      "ORDER_EVENTS_QUEUE=${aws_sqs_queue.order_events.name}\n",
      "ORDER_EVENTS_DLQ=${aws_sqs_queue.order_events_dlq.name}\n",
      "DOCUMENT_CHANGES_TOPIC_ARN=${deployed.document_changes_topic_arn}\n",
      "CONSUMER_MAX_RECEIVES=${var.consumer_max_receives}\n",
      "REDIS_URL=${deployed.redis.url}\n",
      "REDIS_AUTH_SECRET_ID=${deployed.redis.auth_secret_arn}\n",
      # Alias names, the same in every region (keys.tf): S3 resolves them in the bucket's region.
      "DOCUMENTS_KMS_KEY_ID=${local.data_key_alias}\n",
      "TENANT_KMS_KEYS=${join(",", [for tenant in sort(tolist(var.tenant_kms_keys)) : "${tenant}=${local.tenant_key_aliases[tenant]}"])}\n",
      ], var.cdn ? [
      # The region's distribution; the private key stays in the secret, which the API reads with its own role.
      "DOCUMENT_CDN_DOMAIN=${deployed.cdn.domain}\n",
      "DOCUMENT_CDN_KEY_PAIR_ID=${deployed.cdn.key_pair_id}\n",
      "DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID=${deployed.cdn.private_key_secret}\n",
      ] : [], local.multi_region ? [
      "DOCUMENT_REGIONS=${join(",", [for other in local.regions : "${other}=${local.bucket_names[other]}"])}\n",
      "DOCUMENT_EVENTS_TOPIC_ARN=${local.document_events_topics[region]}\n",
      "DOCUMENT_INVALIDATIONS_QUEUE=${local.name}-document-invalidations\n",
      "DOCUMENT_INVALIDATIONS_DLQ=${local.name}-document-invalidations-dlq\n",
    ] : []))
  }
}

output "k8s_env" {
  description = "Contents of k8s/aws.env: region, resource names and the Redis endpoint (no secret) for the ConfigMap."
  value       = local.k8s_env[var.region]
}
