# Shared cache and rate-limit counters, over TLS with an AUTH token. The token
# lives in Secrets Manager only: the API reads it at start with its own role
# (REDIS_AUTH_SECRET_ID); REDIS_URL in the ConfigMap holds no password, and no
# Kubernetes object ever holds the token. Terraform sets the first token;
# rotations happen outside it (docs/deploy.md: "Rotate the Redis token"), hence the
# ignore_changes below. The first token is in the terraform state: keep the
# state private (an encrypted S3 backend for a shared deployment).
resource "random_password" "redis_auth" {
  length  = 64
  special = false # ElastiCache forbids some symbols, and the token goes in a URL
}

resource "aws_secretsmanager_secret" "redis_auth" {
  region = var.region

  name_prefix             = "${var.name}-redis-auth-"
  description             = "AUTH token of the ${var.name} ElastiCache replication group"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  region = var.region

  secret_id     = aws_secretsmanager_secret.redis_auth.id
  secret_string = random_password.redis_auth.result

  lifecycle {
    ignore_changes = [secret_string] # rotated outside terraform
  }
}

resource "aws_elasticache_subnet_group" "redis" {
  region = var.region

  name       = "${var.name}-redis"
  subnet_ids = module.vpc.private_subnets
}

# Reachable from the nodes (and so the pods, which share the node security
# group under the VPC CNI) and from nothing else; no egress at all.
resource "aws_security_group" "redis" {
  region = var.region

  name_prefix = "${var.name}-redis-"
  description = "Redis, from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "Redis TLS from the EKS nodes"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "redis" {
  region = var.region

  replication_group_id = "${var.name}-redis"
  description          = "${var.name} cache and rate limits"

  engine               = "redis"
  engine_version       = "7.1"
  parameter_group_name = "default.redis7"
  node_type            = var.redis_node_type
  port                 = 6379

  # A primary and a replica in two AZs, with automatic failover.
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [aws_security_group.redis.id]

  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  auth_token                 = aws_secretsmanager_secret_version.redis_auth.secret_string

  snapshot_retention_limit = 1

  lifecycle {
    ignore_changes = [auth_token] # rotated outside terraform
  }
}
