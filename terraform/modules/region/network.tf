module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.5.1"

  region = var.region
  name   = var.name
  cidr   = var.vpc_cidr
  azs    = local.azs

  # Nodes and Redis live in the private subnets; only the load balancer is public.
  private_subnets = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]

  # One NAT keeps a first deployment cheap; for production set
  # one_nat_gateway_per_az so an AZ outage does not cut the others off.
  enable_nat_gateway = true
  single_nat_gateway = true

  enable_dns_hostnames = true
  enable_dns_support   = true

  # Off by default (var.vpc_flow_logs): accepted and rejected connections,
  # aggregated per minute, into a CloudWatch log group the module creates.
  enable_flow_log                                 = var.vpc_flow_logs
  create_flow_log_cloudwatch_log_group            = var.vpc_flow_logs
  create_flow_log_cloudwatch_iam_role             = var.vpc_flow_logs
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = 30
}

# DynamoDB and S3 traffic stays on the AWS network and skips the NAT (and its
# per-GB charge): gateway endpoints are free.
resource "aws_vpc_endpoint" "gateway" {
  for_each = toset(["dynamodb", "s3"])

  region            = var.region
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}
