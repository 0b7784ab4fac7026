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
  description = "Instance types of the managed node group, all of one architecture (Graviton arm64, or x86_64): one AMI serves the group. The default is the node docs/capacity.md plans with."
  type        = list(string)
  default     = ["c7g.2xlarge"]

  validation {
    # Graviton types have a "g" after the generation digit (c7g, m7gd, x2gd, im4gn).
    condition     = length(distinct([for type in var.node_instance_types : can(regex("^[a-z]+[0-9]+g[a-z]*\\.", type))])) == 1
    error_message = "Instance types of one architecture only (all Graviton, or none): the group has one AMI."
  }
}

variable "node_count" {
  description = "Nodes of the group: the cluster autoscaler (k8s/cluster-autoscaler) keeps it between min and max; desired is the size at creation only. The default max is docs/capacity.md's nodes at the targets plus a rollout's surge (docs/deploy.md, \"Nodes\")."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 3, max = 340 }

  validation {
    condition     = var.node_count.min >= 1 && var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max
    error_message = "1 <= min <= desired <= max."
  }
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

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the API over HTTPS (the load balancer's port 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# No default: who may run kubectl against the cluster is the operator's
# decision. Not empty: a private-only endpoint needs a way into the VPC (a VPN
# or a bastion), which this configuration does not create, so an empty list
# would make a cluster nobody can reach.
variable "admin_cidrs" {
  description = "CIDR blocks allowed to reach the EKS API endpoint (kubectl), e.g. [\"203.0.113.7/32\"]; at least one."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0
    error_message = "At least one CIDR: nothing in this configuration reaches a private-only endpoint (no VPN, no bastion)."
  }

  validation {
    condition     = alltrue([for cidr in var.admin_cidrs : !contains(["0.0.0.0/0", "::/0"], cidr) && can(cidrhost(cidr, 0))])
    error_message = "Valid CIDR blocks, and not the whole internet: the Kubernetes API is no public endpoint."
  }
}

# No default: Bearer keys travel in every request, so the API is served over
# TLS only (docs/deploy.md: "1. A certificate").
variable "certificate_arn" {
  description = "ACM certificate of the API's domain for the HTTPS listener (arn:aws:acm:<region>:<account>:certificate/<id>)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.certificate_arn))
    error_message = "An ACM certificate ARN in the deployment's region."
  }
}

variable "plain_http" {
  description = "Port 80: \"off\" (nothing listens), \"redirect\" (every request answered 301 to HTTPS), or \"forward\" (plain HTTP served, only from plain_http_cidrs)."
  type        = string
  default     = "off"

  validation {
    condition     = contains(["off", "redirect", "forward"], var.plain_http)
    error_message = "One of off, redirect, forward."
  }
}

variable "plain_http_cidrs" {
  description = "With plain_http = \"forward\": the only CIDR blocks that may send plain HTTP (a test network, never the internet)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.plain_http_cidrs : !contains(["0.0.0.0/0", "::/0"], cidr) && can(cidrhost(cidr, 0))])
    error_message = "Valid CIDR blocks, and not the whole internet: plain HTTP carries the API keys in clear."
  }
}

variable "alb_access_logs" {
  description = "Write the load balancer's access logs to an S3 bucket of their own (kept 90 days); false opts out."
  type        = bool
  default     = true
}

variable "vpc_flow_logs" {
  description = "Record the VPC's flow logs in CloudWatch Logs (kept 30 days)."
  type        = bool
  default     = false
}

variable "waf" {
  description = "An AWS WAF web ACL on each region's load balancer: AWS managed rules (IP reputation, known bad inputs, common rules with the body rules counting only) and a per-IP rate limit. About $9 a month per region plus $0.60 per million requests; false opts out."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests one client IP may send in 5 minutes before the WAF blocks it (until its rate falls back). The default is the app's own per-tenant quota over 5 minutes (RATE_LIMIT_PER_MINUTE 60000 x 5): no client the app would serve is cut off; lower it if your clients are many small ones rather than a few servers."
  type        = number
  default     = 300000

  validation {
    condition     = var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000 && floor(var.waf_rate_limit) == var.waf_rate_limit
    error_message = "waf_rate_limit is a whole number of requests per 5 minutes between 10 and 2000000000 (AWS WAF's bounds)."
  }
}

variable "waf_logging" {
  description = "Log the requests the WAF blocks or counts (not the ones it lets through) to CloudWatch Logs, kept 30 days, the Authorization header redacted."
  type        = bool
  default     = false
}

variable "node_volume_size" {
  description = "Size in GiB of each node's root volume (gp3, encrypted)."
  type        = number
  default     = 50
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
  description = "Protects the tables and their replicas, the buckets, the load balancer and the image repository from destroy; set false only to tear everything down."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- keys and retention (keys.tf)

variable "tenant_kms_keys" {
  description = "Tenants whose content is encrypted under a KMS key of their own (one per region, alias/<name>-tenant-<tenant>), so that disabling it crypto-shreds them; the pods get TENANT_KMS_KEYS from it."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for tenant in var.tenant_kms_keys : can(regex("^[a-z0-9][a-z0-9-]{0,62}$", tenant))])
    error_message = "Tenant names as API_KEYS has them: lowercase letters, digits and dashes, 1-63, starting with a letter or digit."
  }
}

variable "object_lock" {
  description = "S3 Object Lock on the documents buckets, for S3_OBJECT_LOCK_MODE (GOVERNANCE or COMPLIANCE, set on the pods). Irreversible: once on, a bucket keeps it, and setting this back to false only stops terraform managing it. Turned on with the bucket's Object Lock configuration, which AWS accepts on a new bucket and on an existing versioned one (objects written before keep no retention); no default retention: the service sets each object's."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------- several regions (multi-region.tf)

variable "regions" {
  description = "Regions of the service, the primary first (it must be region: orders live there); [] or one region: region alone."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.regions) == length(distinct(var.regions)) && alltrue([for region in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", region))])
    error_message = "Region names (like eu-west-1), each once."
  }
}

variable "dns" {
  description = "With several regions: the API's DNS name and the Route 53 hosted zone it is in (latency records and health checks)."
  type        = object({ zone_id = string, name = string })
  default     = null
}

# ACM certificates are regional: each region's load balancer needs one of its own for the API's name.
variable "certificate_arns" {
  description = "With several regions: the ACM certificate of the API's name in each further region, by region (the primary's is certificate_arn)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for region, arn in var.certificate_arns : can(regex("^arn:aws[a-z-]*:acm:${region}:[0-9]{12}:certificate/", arn))])
    error_message = "Each an ACM certificate ARN in the region it is listed under."
  }
}

# ---------------------------------------------------------------- CloudFront (modules/region/cdn.tf)

variable "cdn" {
  description = "CloudFront in front of each region's documents bucket: direct links become CloudFront signed URLs (needs cdn_public_key_pem, from make cdn-key); false: S3 presigned URLs."
  type        = bool
  default     = true
}

# No default: the key pair is the operator's (make cdn-key writes terraform/cdn.auto.tfvars with this), so that the
# private key never enters the terraform state.
variable "cdn_public_key_pem" {
  description = "With cdn: the public key (PEM, RSA 2048) of the pair that signs the direct links; its private key goes into each region's secret (make cdn-key-upload)."
  type        = string
  default     = null

  validation {
    condition     = var.cdn_public_key_pem == null || can(regex("^-----BEGIN PUBLIC KEY-----\\n[A-Za-z0-9+/=\\n]+-----END PUBLIC KEY-----\\n?$", var.cdn_public_key_pem))
    error_message = "A PEM public key (-----BEGIN PUBLIC KEY-----), as openssl pkey -pubout writes it."
  }
}

variable "cdn_price_class" {
  description = "CloudFront price class: PriceClass_100 (North America, Europe), PriceClass_200 (and most of Asia, Africa, the Middle East), PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.cdn_price_class)
    error_message = "One of PriceClass_100, PriceClass_200, PriceClass_All."
  }
}

variable "cdn_domain" {
  description = "With cdn: a DNS name of your own for the links (a CNAME to the distribution) and its ACM certificate, which CloudFront takes from us-east-1 only; null: the distribution's cloudfront.net name."
  type        = object({ name = string, certificate_arn = string })
  default     = null

  validation {
    condition     = var.cdn_domain == null || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.cdn_domain.certificate_arn))
    error_message = "An ACM certificate in us-east-1: CloudFront uses no other region's."
  }
}
