# Internet-facing Application Load Balancer -> target group of the node group's
# instances on the API's NodePort -> kube-proxy -> a ready API pod. No AWS Load
# Balancer Controller needed; the NodePort is fixed on both sides.
#
# HTTPS only by default (var.certificate_arn is required: this region's own,
# since ACM certificates are regional). Port 80 exists only
# if var.plain_http asks for it: a redirect to HTTPS, or plain HTTP from the
# CIDRs of var.plain_http_cidrs.
#
# The load balancer forwards the public API only (local.public_paths) and
# answers 404 to everything else: /metrics and the probe routes /health/live
# and /health/ready stay inside the cluster. An allow-list rather than a rule
# refusing /metrics, because the app's router decodes the path and a deny
# rule matches it undecoded: GET /%6detrics is /metrics to Fastify, and no
# "/metrics*" pattern. The load balancer's own health check goes straight to
# the targets, past these rules, so /health/ready keeps working for it.
locals {
  public_paths = {
    # The API of the contract, every method.
    api = ["/documents", "/documents/*", "/orders", "/orders/*"]
    # Status for uptime checks (Route 53's, with several regions), the API
    # description for clients, and the resumable uploads' resources (with
    # these rather than a rule of their own: a rule takes five paths).
    meta = ["/health", "/openapi.json", "/uploads", "/uploads/*"]
  }
  # Listeners that forward to the API (a plain-HTTP one only when asked for).
  forwarding_listeners = var.plain_http == "forward" ? ["https", "http"] : ["https"]
  not_found            = jsonencode({ type = "about:blank", title = "Not Found", status = 404 })
}

resource "aws_security_group" "alb" {
  region = var.region

  name_prefix = "${var.name}-alb-"
  description = "HTTPS (and port 80 only if asked for) in, the API NodePort out"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description = "HTTPS from clients"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  dynamic "ingress" {
    for_each = var.plain_http == "off" ? [] : [var.plain_http]
    content {
      description = ingress.value == "redirect" ? "HTTP from clients, redirected to HTTPS" : "Plain HTTP from the allowed test networks"
      from_port   = 80
      to_port     = 80
      protocol    = "tcp"
      cidr_blocks = ingress.value == "redirect" ? var.allowed_cidrs : var.plain_http_cidrs
    }
  }

  egress {
    description     = "To the API NodePort on the nodes"
    from_port       = var.node_port
    to_port         = var.node_port
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# The matching hole in the nodes' security group: the NodePort, from the ALB only.
resource "aws_vpc_security_group_ingress_rule" "nodes_from_alb" {
  region = var.region

  security_group_id            = module.eks.node_security_group_id
  referenced_security_group_id = aws_security_group.alb.id
  from_port                    = var.node_port
  to_port                      = var.node_port
  ip_protocol                  = "tcp"
  description                  = "API NodePort from the load balancer"
}

resource "aws_lb" "api" {
  region = var.region

  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  subnets            = module.vpc.public_subnets
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  idle_timeout               = 60
  # Its DNS name is what clients and Route 53 point at: a new one after an
  # accidental destroy is an outage until every CNAME follows.
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.alb_access_logs ? [1] : []
    content {
      bucket  = aws_s3_bucket.alb_logs[0].id
      enabled = true
    }
  }

  depends_on = [aws_s3_bucket_policy.alb_logs]
}

resource "aws_lb_target_group" "api" {
  region = var.region

  name        = "${var.name}-api"
  target_type = "instance"
  port        = var.node_port
  protocol    = "HTTP"
  vpc_id      = module.vpc.vpc_id

  # Targets are nodes, not pods: kube-proxy moves traffic off a terminating
  # pod, so this only has to cover a node leaving the group.
  deregistration_delay = 30

  # The pods' own readiness (not shutting down, event loop not stalled), the
  # same as the kubelet's: a storage outage keeps targets healthy, so clients
  # get the app's 503 + Retry-After rather than this load balancer's 502.
  health_check {
    path                = "/health/ready"
    port                = "traffic-port"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# Register the managed node group's instances (its one Auto Scaling group)
# with the target group, now and as nodes come and go.
resource "aws_autoscaling_attachment" "api" {
  region = var.region

  autoscaling_group_name = module.eks.eks_managed_node_groups["default"].node_group_autoscaling_group_names[0]
  lb_target_group_arn    = aws_lb_target_group.api.arn
}

resource "aws_lb_listener" "https" {
  region = var.region

  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # What no rule below forwards.
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = local.not_found
    }
  }

  lifecycle {
    precondition {
      condition     = split(":", var.certificate_arn)[3] == var.region
      error_message = "The certificate of ${var.region} must be an ACM certificate of ${var.region}: a load balancer takes only its own region's."
    }
  }
}

resource "aws_lb_listener" "http" {
  count = var.plain_http == "off" ? 0 : 1

  region = var.region

  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = var.plain_http == "redirect" ? "redirect" : "fixed-response"

    dynamic "redirect" {
      for_each = var.plain_http == "redirect" ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }

    dynamic "fixed_response" {
      for_each = var.plain_http == "forward" ? [1] : []
      content {
        content_type = "application/json"
        status_code  = "404"
        message_body = local.not_found
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.plain_http != "forward" || length(var.plain_http_cidrs) > 0
      error_message = "plain_http = \"forward\" needs plain_http_cidrs: plain HTTP is never open to the internet."
    }
  }
}

# The public API, forwarded; one rule per group of paths (a rule takes at
# most five), on every forwarding listener.
resource "aws_lb_listener_rule" "public_api" {
  for_each = toset(local.forwarding_listeners)

  region = var.region

  listener_arn = each.key == "https" ? aws_lb_listener.https.arn : aws_lb_listener.http[0].arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  condition {
    path_pattern {
      values = local.public_paths.api
    }
  }
}

resource "aws_lb_listener_rule" "public_meta" {
  for_each = toset(local.forwarding_listeners)

  region = var.region

  listener_arn = each.key == "https" ? aws_lb_listener.https.arn : aws_lb_listener.http[0].arn
  priority     = 20

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  condition {
    path_pattern {
      values = local.public_paths.meta
    }
  }
}
