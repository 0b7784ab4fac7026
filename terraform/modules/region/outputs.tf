# What the root module needs of a region: where to route clients, how to
# reach the cluster, and the configuration of its pods. No output carries a
# secret: the Redis token stays in this region's Secrets Manager.

output "load_balancer" {
  description = "The region's load balancer, for its Route 53 latency record and health check."
  value       = { dns_name = aws_lb.api.dns_name, zone_id = aws_lb.api.zone_id }
}

output "cluster_name" {
  description = "Name of the region's EKS cluster."
  value       = module.eks.cluster_name
}

output "component_role_arns" {
  description = "IAM role of each component in this region, which its pods get through EKS Pod Identity."
  value       = { for key, role in aws_iam_role.component : key => role.arn }
}

output "redis" {
  description = "The region's Redis: REDIS_URL (no password), the Secrets Manager secret of its AUTH token (REDIS_AUTH_SECRET_ID), and its replication group (for rotating the token)."
  value = {
    url                  = "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
    auth_secret_arn      = aws_secretsmanager_secret.redis_auth.arn
    replication_group_id = aws_elasticache_replication_group.redis.id
  }
}

output "document_changes_topic_arn" {
  description = "The region's topic of document.created and document.deleted events (DOCUMENT_CHANGES_TOPIC_ARN), for subscribers."
  value       = aws_sns_topic.document_changes.arn
}

output "cdn" {
  description = "With cdn: the distribution's host (DOCUMENT_CDN_DOMAIN), the public key id (DOCUMENT_CDN_KEY_PAIR_ID) and the secret of its private key (DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID); null without."
  value = var.cdn ? {
    domain             = var.cdn_domain == null ? aws_cloudfront_distribution.documents[0].domain_name : var.cdn_domain.name
    key_pair_id        = aws_cloudfront_public_key.links[0].id
    private_key_secret = aws_secretsmanager_secret.cdn_private_key[0].arn
  } : null
}
