# The region's load balancer, as in the root module: the ALB forwards to the
# API's NodePort on the node group's instances. HTTPS only (HTTP redirects):
# Route 53 sends the API's domain here, so this region has a certificate of
# its own for it, validated in the domain's hosted zone.
resource "aws_security_group" "alb" {
  region      = var.region
  name_prefix = "${var.name}-alb-"
  description = "Public HTTP(S) in, the API NodePort out"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description = "HTTP from clients (redirected)"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "HTTPS from clients and the Route 53 health checkers"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
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

resource "aws_vpc_security_group_ingress_rule" "nodes_from_alb" {
  region                       = var.region
  security_group_id            = module.eks.node_security_group_id
  referenced_security_group_id = aws_security_group.alb.id
  from_port                    = var.node_port
  to_port                      = var.node_port
  ip_protocol                  = "tcp"
  description                  = "API NodePort from the load balancer"
}

resource "aws_lb" "api" {
  region             = var.region
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  subnets            = module.vpc.public_subnets
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  idle_timeout               = 60
}

resource "aws_lb_target_group" "api" {
  region               = var.region
  name                 = "${var.name}-api"
  target_type          = "instance"
  port                 = var.node_port
  protocol             = "HTTP"
  vpc_id               = module.vpc.vpc_id
  deregistration_delay = 30

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

resource "aws_autoscaling_attachment" "api" {
  region                 = var.region
  autoscaling_group_name = module.eks.eks_managed_node_groups["default"].node_group_autoscaling_group_names[0]
  lb_target_group_arn    = aws_lb_target_group.api.arn
}

resource "aws_acm_certificate" "api" {
  region            = var.region
  domain_name       = var.dns.name
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

# The validation record of a domain is the same in every region: each
# region's certificate writes (and finds) the same one.
resource "aws_route53_record" "certificate_validation" {
  for_each = { for option in aws_acm_certificate.api.domain_validation_options : option.domain_name => option }

  zone_id         = var.dns.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "api" {
  region                  = var.region
  certificate_arn         = aws_acm_certificate.api.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

resource "aws_lb_listener" "http" {
  region            = var.region
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  region            = var.region
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.api.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
