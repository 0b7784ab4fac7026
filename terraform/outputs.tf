output "load_balancer_dns_name" {
  description = "DNS name of the load balancer: point the certificate's domain at it (a CNAME or an alias record)."
  value       = aws_lb.api.dns_name
}

output "api_url" {
  description = "Base URL of the API through the load balancer (its certificate names your domain, not this host: curl --connect-to, or use the domain once its DNS points here)."
  value       = "https://${aws_lb.api.dns_name}"
}

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "configure_kubectl" {
  description = "Command that points kubectl at the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "ecr_repository_url" {
  description = "Repository to push the image to (tags are immutable)."
  value       = aws_ecr_repository.app.repository_url
}

output "component_role_arns" {
  description = "IAM role of each component (api, relay, consumer), which its pods get through EKS Pod Identity."
  value       = { for key, role in aws_iam_role.component : key => role.arn }
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret holding the Redis AUTH token (the API reads it at start)."
  value       = aws_secretsmanager_secret.redis_auth.arn
}

output "redis_replication_group_id" {
  description = "ElastiCache replication group, for rotating its AUTH token."
  value       = aws_elasticache_replication_group.redis.id
}

# The account-specific part of the service's configuration, as the env file
# that k8s/kustomization.yaml turns into the ConfigMap:
#   terraform output -raw k8s_env > ../k8s/aws.env
# k8s/aws.env.example is what it prints with the variable defaults;
# test/infra evaluates this template to check that they agree.
output "k8s_env" {
  description = "Contents of k8s/aws.env: region, resource names and the Redis endpoint (no secret) for the ConfigMap."
  value       = <<-EOT
    AWS_REGION=${var.region}
    DOCUMENTS_TABLE=${aws_dynamodb_table.this["documents"].name}
    IDEMPOTENCY_TABLE=${aws_dynamodb_table.this["idempotency-keys"].name}
    ORDERS_TABLE=${aws_dynamodb_table.this["orders"].name}
    CONSUMER_TABLE=${aws_dynamodb_table.this["order-consumer"].name}
    DOCUMENTS_BUCKET=${aws_s3_bucket.documents.bucket}
    ORDER_EVENTS_TOPIC_ARN=${aws_sns_topic.order_events.arn}
    ORDER_EVENTS_QUEUE=${aws_sqs_queue.order_events.name}
    ORDER_EVENTS_DLQ=${aws_sqs_queue.order_events_dlq.name}
    CONSUMER_MAX_RECEIVES=${var.consumer_max_receives}
    REDIS_URL=rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379
    REDIS_AUTH_SECRET_ID=${aws_secretsmanager_secret.redis_auth.arn}
  EOT
}
