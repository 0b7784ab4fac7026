locals {
  # Graviton instance types have a "g" after the generation digit (c7g, m7gd).
  node_arm64 = can(regex("^[a-z]+[0-9]+g[a-z]*\\.", var.node_instance_types[0]))
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.15.1"

  region             = var.region
  name               = var.name
  kubernetes_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  # kubectl only from the operator's CIDRs (a required variable), or from
  # inside the VPC when there are none; the nodes always talk privately.
  # Whoever runs terraform becomes admin.
  endpoint_private_access                  = true
  endpoint_public_access                   = length(var.admin_cidrs) > 0
  endpoint_public_access_cidrs             = var.admin_cidrs
  enable_cluster_creator_admin_permissions = true

  addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
      # Without it, the NetworkPolicies of k8s/ are accepted and not enforced.
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    # Pod Identity hands each component's IAM role to its pods (see iam.tf).
    eks-pod-identity-agent = {
      before_compute = true
    }
    # The API's HorizontalPodAutoscaler scales on CPU, which needs metrics.
    metrics-server = {}
  }

  # One group for every pod. The cluster autoscaler (cluster-autoscaler.tf,
  # k8s/cluster-autoscaler) sets its desired size between min and max from
  # the pods left Pending; the module ignores desired_size after creation, so
  # an apply does not undo that. Nodes it adds join this group's Auto Scaling
  # group, which is what the load balancer targets (lb.tf): docs/deploy.md,
  # "Nodes", says why this and not Karpenter.
  eks_managed_node_groups = {
    default = {
      instance_types = var.node_instance_types
      # The root's validation keeps the types to one architecture.
      ami_type   = local.node_arm64 ? "AL2023_ARM_64_STANDARD" : "AL2023_x86_64_STANDARD"
      subnet_ids = module.vpc.private_subnets

      min_size     = var.node_count.min
      max_size     = var.node_count.max
      desired_size = var.node_count.desired

      # Encrypted root volumes (the AWS managed EBS key), gone with the node.
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = var.node_volume_size
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }

      # IMDSv2 only, one hop: pods (which get their credentials from Pod
      # Identity) cannot reach the node role through the metadata service.
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }
}
