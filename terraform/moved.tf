# Where the resources of a single-region deployment went when the primary's
# regional resources moved into modules/region (regions.tf): the same
# objects, now at module.region["primary"], so that an existing deployment
# plans no destroy and no create (test/infra/moved.test.ts checks that each
# one is configured as it was). Keep these blocks: removing one makes
# terraform destroy that object in a deployment that has not applied since.

# Network and cluster

moved {
  from = module.vpc
  to   = module.region["primary"].module.vpc
}

moved {
  from = aws_vpc_endpoint.gateway
  to   = module.region["primary"].aws_vpc_endpoint.gateway
}

moved {
  from = module.eks
  to   = module.region["primary"].module.eks
}

# Load balancer

moved {
  from = aws_security_group.alb
  to   = module.region["primary"].aws_security_group.alb
}

moved {
  from = aws_vpc_security_group_ingress_rule.nodes_from_alb
  to   = module.region["primary"].aws_vpc_security_group_ingress_rule.nodes_from_alb
}

moved {
  from = aws_lb.api
  to   = module.region["primary"].aws_lb.api
}

moved {
  from = aws_lb_target_group.api
  to   = module.region["primary"].aws_lb_target_group.api
}

moved {
  from = aws_autoscaling_attachment.api
  to   = module.region["primary"].aws_autoscaling_attachment.api
}

moved {
  from = aws_lb_listener.https
  to   = module.region["primary"].aws_lb_listener.https
}

moved {
  from = aws_lb_listener.http
  to   = module.region["primary"].aws_lb_listener.http
}

moved {
  from = aws_lb_listener_rule.public_api
  to   = module.region["primary"].aws_lb_listener_rule.public_api
}

moved {
  from = aws_lb_listener_rule.public_meta
  to   = module.region["primary"].aws_lb_listener_rule.public_meta
}

# Access logs

moved {
  from = aws_s3_bucket.alb_logs
  to   = module.region["primary"].aws_s3_bucket.alb_logs
}

moved {
  from = aws_s3_bucket_public_access_block.alb_logs
  to   = module.region["primary"].aws_s3_bucket_public_access_block.alb_logs
}

moved {
  from = aws_s3_bucket_ownership_controls.alb_logs
  to   = module.region["primary"].aws_s3_bucket_ownership_controls.alb_logs
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.alb_logs
  to   = module.region["primary"].aws_s3_bucket_server_side_encryption_configuration.alb_logs
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.alb_logs
  to   = module.region["primary"].aws_s3_bucket_lifecycle_configuration.alb_logs
}

moved {
  from = aws_s3_bucket_policy.alb_logs
  to   = module.region["primary"].aws_s3_bucket_policy.alb_logs
}

# Redis

moved {
  from = random_password.redis_auth
  to   = module.region["primary"].random_password.redis_auth
}

moved {
  from = aws_secretsmanager_secret.redis_auth
  to   = module.region["primary"].aws_secretsmanager_secret.redis_auth
}

moved {
  from = aws_secretsmanager_secret_version.redis_auth
  to   = module.region["primary"].aws_secretsmanager_secret_version.redis_auth
}

moved {
  from = aws_elasticache_subnet_group.redis
  to   = module.region["primary"].aws_elasticache_subnet_group.redis
}

moved {
  from = aws_security_group.redis
  to   = module.region["primary"].aws_security_group.redis
}

moved {
  from = aws_elasticache_replication_group.redis
  to   = module.region["primary"].aws_elasticache_replication_group.redis
}

# Documents bucket

moved {
  from = aws_s3_bucket.documents
  to   = module.region["primary"].aws_s3_bucket.documents
}

moved {
  from = aws_s3_bucket_public_access_block.documents
  to   = module.region["primary"].aws_s3_bucket_public_access_block.documents
}

moved {
  from = aws_s3_bucket_ownership_controls.documents
  to   = module.region["primary"].aws_s3_bucket_ownership_controls.documents
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.documents
  to   = module.region["primary"].aws_s3_bucket_server_side_encryption_configuration.documents
}

moved {
  from = aws_s3_bucket_versioning.documents
  to   = module.region["primary"].aws_s3_bucket_versioning.documents
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.documents
  to   = module.region["primary"].aws_s3_bucket_lifecycle_configuration.documents
}

moved {
  from = aws_s3_bucket_policy.documents
  to   = module.region["primary"].aws_s3_bucket_policy.documents
}

# Per-component identities

moved {
  from = aws_iam_role.component
  to   = module.region["primary"].aws_iam_role.component
}

moved {
  from = aws_iam_role_policy.component
  to   = module.region["primary"].aws_iam_role_policy.component
}

moved {
  from = aws_eks_pod_identity_association.component
  to   = module.region["primary"].aws_eks_pod_identity_association.component
}
