# Inputs of one secondary region of the document path. The root module
# passes its own settings down, so every region is built the same way.

variable "region" {
  description = "The region this instance of the module deploys to."
  type        = string
}

variable "regions" {
  description = "Every region of the document path, the primary first (the homes of writes, the buckets read back from)."
  type        = list(string)
}

variable "name" {
  description = "Prefix of every resource name, as in the root module."
  type        = string
}

variable "account_id" {
  description = "The AWS account, for the names of resources in the other regions."
  type        = string
}

variable "bucket_names" {
  description = "Documents bucket of every region, by region."
  type        = map(string)
}

variable "table_names" {
  description = "The global tables (documents, idempotency-keys), by the service's name for them."
  type        = map(string)
}

variable "orders" {
  description = "The primary's orders resources, which this region's pods call: table ARNs, topic ARN, queue ARNs."
  type        = object({ table_arns = list(string), topic_arn = string, queue_arns = list(string) })
}

variable "dns" {
  description = "The API's DNS name and its Route 53 hosted zone: this region's certificate is issued for it."
  type        = object({ zone_id = string, name = string })
}

variable "vpc_cidr" {
  description = "CIDR block of the region's VPC (VPCs of different regions are not peered, so it may repeat)."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
}

variable "node_count" {
  description = "Minimum, desired and maximum number of nodes."
  type        = object({ min = number, desired = number, max = number })
}

variable "node_port" {
  description = "NodePort of the API Service; the load balancer forwards to it on every node."
  type        = number
}

variable "k8s_namespace" {
  description = "Namespace of the service in the cluster; Pod Identity binds to it."
  type        = string
}

variable "k8s_service_account" {
  description = "ServiceAccount of the service's pods; Pod Identity binds to it."
  type        = string
}

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the load balancer."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the EKS API endpoint."
  type        = list(string)
}

variable "redis_node_type" {
  description = "ElastiCache node type (two nodes, one per AZ)."
  type        = string
}

variable "consumer_max_receives" {
  description = "Receives of one message before SQS moves it to the dead-letter queue."
  type        = number
}

variable "deletion_protection" {
  description = "Protects the bucket from destroy."
  type        = bool
}
