# Inputs of one region. The root module passes its own settings down
# unchanged, so every region is built with the same defaults; what differs
# per region is the region, its certificate, and the names the root makes.

variable "region" {
  description = "The region this instance of the module deploys to."
  type        = string
}

variable "regions" {
  description = "Every region of the deployment, the primary first (one region: this one alone)."
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

variable "global_table_arns" {
  description = "The documents and idempotency-keys tables, by table, then by region: each region's replica of the global table (one region: the table)."
  type        = map(map(string))
}

variable "orders" {
  description = "The primary's orders resources, which every region's pods use: ARNs of the orders and consumer tables, the topic, the queue and its dead-letter queue."
  type = object({
    table_arn             = string
    consumer_table_arn    = string
    topic_arn             = string
    queue_arn             = string
    dead_letter_queue_arn = string
  })
}

variable "document_events_topic_arns" {
  description = "With several regions: every region's document-events topic, by region (the others' deliver their deletes to this region's queue)."
  type        = map(string)
}

variable "content_keys" {
  description = "The KMS keys of every region (keys.tf in the root), by region: data, the bucket's default key, and tenants, each tenant's own key, as ARNs."
  type        = map(object({ data = string, tenants = map(string) }))
}

variable "certificate_arn" {
  description = "ACM certificate of the API's domain in this region (ACM certificates are regional) for the HTTPS listener."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "An ACM certificate ARN (certificate_arn for the primary, certificate_arns for each further region)."
  }
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

variable "node_volume_size" {
  description = "Size in GiB of each node's root volume (gp3, encrypted)."
  type        = number
}

variable "node_port" {
  description = "NodePort of the API Service; the load balancer forwards to it on every node."
  type        = number
}

variable "k8s_namespace" {
  description = "Namespace of the service in the cluster; Pod Identity binds to it."
  type        = string
}

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the API over HTTPS."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the EKS API endpoint; [] for a private endpoint only."
  type        = list(string)
}

variable "plain_http" {
  description = "Port 80: off, redirect, or forward (from plain_http_cidrs only)."
  type        = string
}

variable "plain_http_cidrs" {
  description = "With plain_http = \"forward\": the only CIDR blocks that may send plain HTTP."
  type        = list(string)
}

variable "alb_access_logs" {
  description = "Write the load balancer's access logs to an S3 bucket of this region."
  type        = bool
}

variable "vpc_flow_logs" {
  description = "Record the VPC's flow logs in CloudWatch Logs."
  type        = bool
}

variable "waf" {
  description = "Put an AWS WAF web ACL (waf.tf) in front of the load balancer."
  type        = bool
}

variable "waf_rate_limit" {
  description = "Requests one client IP may send in 5 minutes before the WAF blocks it."
  type        = number
}

variable "waf_logging" {
  description = "Log the requests the WAF blocks or counts to CloudWatch Logs."
  type        = bool
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
  description = "Protects the buckets and the load balancer from destroy."
  type        = bool
}

variable "object_lock" {
  description = "S3 Object Lock on the documents bucket (irreversible; no default retention: the service sets each object's)."
  type        = bool
}

variable "cdn" {
  description = "CloudFront in front of the documents bucket, for signed direct links (cdn.tf)."
  type        = bool
}

variable "cdn_public_key_pem" {
  description = "With cdn: the public key (PEM, RSA 2048) of the pair that signs the links (make cdn-key)."
  type        = string
}

variable "cdn_price_class" {
  description = "With cdn: the distribution's price class."
  type        = string
}

variable "cdn_domain" {
  description = "With cdn: a name of your own for the distribution and its ACM certificate (in us-east-1); null: the cloudfront.net name."
  type        = object({ name = string, certificate_arn = string })
}
