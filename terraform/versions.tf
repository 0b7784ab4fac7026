terraform {
  # 1.5.7 is the floor of the EKS module v21.
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0" # the VPC (v6) and EKS (v21) modules need provider v6
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
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
