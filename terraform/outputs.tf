output "load_balancer_dns_name" {
  description = "DNS name of the load balancer in front of the API: curl http://<this>/health"
  value       = aws_lb.api.dns_name
}

output "api_url" {
  description = "Base URL of the API."
  value       = "${var.certificate_arn == null ? "http" : "https"}://${aws_lb.api.dns_name}"
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

output "app_role_arn" {
  description = "IAM role the pods get through EKS Pod Identity."
  value       = aws_iam_role.app.arn
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth.arn
}

output "redis_url" {
  description = "REDIS_URL for the docsvc-secrets Secret (TLS, with the AUTH token)."
  value       = "rediss://:${random_password.redis_auth.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
  sensitive   = true
}

# The account-specific part of the service's configuration, as the env file
# that k8s/kustomization.yaml turns into the ConfigMap:
#   terraform output -raw k8s_env > ../k8s/aws.env
# k8s/aws.env.example is what it prints with the variable defaults;
# test/infra evaluates this template to check that they agree.
output "k8s_env" {
  description = "Contents of k8s/aws.env: region and resource names for the ConfigMap."
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
  EOT
}
