# One region of the service: its network, cluster, load balancer, Redis,
# documents bucket and per-component roles, built the same way in every
# region. The root module instantiates it once for the primary (var.region,
# where orders live) and once per further region of var.regions (docs/deploy.md,
# "Multi-region documents"); what is shared between regions (the tables,
# orders, replication, routing) stays in the root. Every resource is placed
# with the AWS provider's `region` argument (provider v6), so one provider
# configuration serves every region.

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
  # Several regions: homes of writes, buckets read back from, deletes announced.
  multi_region  = length(var.regions) > 1
  other_regions = [for region in var.regions : region if region != var.region]
  # Account-wide names (IAM roles, S3 buckets) are the primary's as they
  # always were; a further region's carry its name.
  global_suffix = var.region == var.regions[0] ? "" : "-${var.region}"
}
