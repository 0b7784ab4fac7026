# One secondary region of the document path: the same network, cluster,
# load balancer and Redis as the primary builds in the root module, its own
# documents bucket, and its side of the cross-region invalidations. Every
# resource is placed with the AWS provider's `region` argument (provider v6),
# so one provider configuration serves every region and the root module can
# instantiate this once per region with for_each.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

data "aws_availability_zones" "available" {
  region = var.region

  # Local and Wavelength zones cannot host the node group or ElastiCache.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
  # The other regions' topics deliver their deletes to this region's queue.
  other_regions = [for region in var.regions : region if region != var.region]
  topic_arns    = { for region in var.regions : region => "arn:aws:sns:${region}:${var.account_id}:${var.name}-document-events" }
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.0"

  region = var.region
  name   = var.name
  cidr   = var.vpc_cidr
  azs    = local.azs

  private_subnets = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, az in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]

  enable_nat_gateway = true
  single_nat_gateway = true

  enable_dns_hostnames = true
  enable_dns_support   = true
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = toset(["dynamodb", "s3"])

  region            = var.region
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"

  region             = var.region
  name               = var.name
  kubernetes_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  endpoint_public_access                   = true
  endpoint_public_access_cidrs             = var.admin_cidrs
  enable_cluster_creator_admin_permissions = true

  addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
    }
    eks-pod-identity-agent = {
      before_compute = true
    }
    metrics-server = {}
  }

  eks_managed_node_groups = {
    default = {
      instance_types = var.node_instance_types
      subnet_ids     = module.vpc.private_subnets

      min_size     = var.node_count.min
      max_size     = var.node_count.max
      desired_size = var.node_count.desired
    }
  }
}
