terraform {
  # 1.10 for the S3 backend's own lock file (backend.tf, use_lockfile); the
  # EKS module v21 needs 1.5.7.
  required_version = ">= 1.10.0"

  # Exact versions, here and on every registry module: an init months later,
  # or on another machine, builds the same thing; an upgrade is a change of
  # these lines, reviewed with its plan. The VPC (v6) and EKS (v21) modules
  # need provider v6.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.38.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.8.1"
    }
  }
}

provider "aws" {
  region = var.region

  # Every resource says what it belongs to, for cost reports and clean-up.
  default_tags {
    tags = {
      Project   = var.name
      ManagedBy = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  name       = var.name
  account_id = data.aws_caller_identity.current.account_id
}
