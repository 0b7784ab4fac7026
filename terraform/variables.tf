variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix of every resource name (tables, bucket, topic, queues, cluster)."
  type        = string
  default     = "docsvc"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "Lowercase letters, digits and dashes, 2-21 characters: it goes into S3 and ElastiCache names."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; private subnets get /20s, public ones /24s."
  type        = string
  default     = "10.0.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the k8s manifests need >= 1.30 for the preStop sleep action)."
  type        = string
  default     = "1.35"
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["t3.large"]
}

variable "node_count" {
  description = "Minimum, desired and maximum number of nodes."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 3, max = 6 }
}

variable "node_port" {
  description = "NodePort of the API Service (k8s/api.yaml); the load balancer forwards to it on every node."
  type        = number
  default     = 30080

  validation {
    condition     = var.node_port >= 30000 && var.node_port <= 32767
    error_message = "Must be in the default Kubernetes NodePort range 30000-32767."
  }
}

variable "k8s_namespace" {
  description = "Namespace of the service in the cluster (k8s/namespace.yaml); Pod Identity binds to it."
  type        = string
  default     = "docsvc"
}

variable "k8s_service_account" {
  description = "ServiceAccount of the service's pods (k8s/serviceaccount.yaml); Pod Identity binds to it."
  type        = string
  default     = "docsvc"
}

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the EKS API endpoint (kubectl)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener; null serves plain HTTP only (no domain needed, for a first test)."
  type        = string
  default     = null
}

variable "consumer_max_receives" {
  description = "Receives of one message before SQS moves it to the dead-letter queue (CONSUMER_MAX_RECEIVES)."
  type        = number
  default     = 5
}

variable "redis_node_type" {
  description = "ElastiCache node type (two nodes, one per AZ)."
  type        = string
  default     = "cache.t4g.small"
}

variable "deletion_protection" {
  description = "Protects the tables, bucket and image repository from destroy; set false only to tear everything down."
  type        = bool
  default     = true
}
