output "load_balancer" {
  description = "The region's load balancer, for its Route 53 latency record and health check."
  value       = { dns_name = aws_lb.api.dns_name, zone_id = aws_lb.api.zone_id }
}

output "cluster_name" {
  description = "Name of the region's EKS cluster."
  value       = module.eks.cluster_name
}

output "bucket" {
  description = "The region's documents bucket (its name and ARN), for S3 Replication."
  value       = { id = aws_s3_bucket.documents.id, arn = aws_s3_bucket.documents.arn }
}

output "document_events_topic_arn" {
  description = "The topic this region's deletes are published on."
  value       = aws_sns_topic.document_events.arn
}

output "document_invalidations_queue_arn" {
  description = "The queue the other regions' deletes reach this region by."
  value       = aws_sqs_queue.document_invalidations.arn
}

output "redis_url" {
  description = "REDIS_URL of this region's pods (TLS, with the AUTH token)."
  value       = "rediss://:${random_password.redis_auth.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
  sensitive   = true
}
