# The node autoscaler: the Kubernetes Cluster Autoscaler, run from
# k8s/cluster-autoscaler in kube-system, grows the managed node group
# (eks.tf) when pods are Pending for want of room and shrinks it when nodes
# stay underused. Its AWS identity comes through Pod Identity, like the
# service's own components, trusted by the same document (iam.tf,
# pod_identity_trust): it may read what Auto Scaling, EC2 and EKS say about
# node groups, and change the size of this cluster's groups only.
# docs/deploy.md, "Nodes", says why this and not Karpenter.
locals {
  cluster_autoscaler = {
    namespace       = "kube-system"
    service_account = "cluster-autoscaler"
  }
  # EKS tags the Auto Scaling group of every managed node group with these
  # (the autoscaler's discovery tags); the cluster is named var.name (eks.tf).
  cluster_autoscaler_tags = [
    { key = "k8s.io/cluster-autoscaler/enabled", value = "true" },
    { key = "k8s.io/cluster-autoscaler/${var.name}", value = "owned" },
  ]
}

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    # What it reads to build a template node of each group and to see
    # scaling failures; these calls take no resource-level permissions.
    sid = "DescribeNodeGroups"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }

  statement {
    # The managed node group's labels and taints, for the template node.
    sid       = "DescribeManagedNodeGroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:aws:eks:${var.region}:${var.account_id}:nodegroup/${var.name}/*/*"]
  }

  statement {
    # Resize, and remove the node it drained: only groups tagged as this
    # cluster's, never another cluster's in the same account.
    sid       = "ScaleOwnNodeGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]

    dynamic "condition" {
      for_each = local.cluster_autoscaler_tags
      content {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${condition.value.key}"
        values   = [condition.value.value]
      }
    }
  }
}

resource "aws_iam_role" "cluster_autoscaler" {
  name               = "${var.name}-cluster-autoscaler${local.global_suffix}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust["cluster-autoscaler"].json
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  name   = "${var.name}-cluster-autoscaler${local.global_suffix}"
  role   = aws_iam_role.cluster_autoscaler.id
  policy = data.aws_iam_policy_document.cluster_autoscaler.json
}

resource "aws_eks_pod_identity_association" "cluster_autoscaler" {
  region = var.region

  cluster_name    = module.eks.cluster_name
  namespace       = local.cluster_autoscaler.namespace
  service_account = local.cluster_autoscaler.service_account
  role_arn        = aws_iam_role.cluster_autoscaler.arn
}
