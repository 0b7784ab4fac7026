# AWS WAF in front of the load balancer (var.waf, on by default): a per-IP
# rate limit, then three AWS managed rule groups. docs/deploy.md, "The web
# application firewall", says what each costs and why the body rules count.
#
# The bodies this service takes are documents: any bytes, up to gigabytes,
# and the resumable uploads' PATCH chunks (application/offset+octet-stream).
# The managed rules that inspect a body would refuse legitimate ones: the
# core rule set's SizeRestrictions_BODY blocks every body over 8 KB (all but
# the smallest uploads), and its pattern rules (scripts, file paths, URLs,
# the metadata address) and known bad inputs' (Java serialisation, Log4j
# lookups) match what an HTML page, a log file or a JAR legitimately holds.
# The app stores bodies without interpreting them and validates its JSON
# ones against schemas, so these rules count (metrics, sampled requests,
# logs) instead of blocking; every rule on headers, paths and query strings
# blocks as AWS ships it.
locals {
  waf_count_only = {
    AWSManagedRulesCommonRuleSet = [
      "SizeRestrictions_BODY",
      "CrossSiteScripting_BODY",
      "GenericLFI_BODY",
      "GenericRFI_BODY",
      "EC2MetaDataSSRF_BODY",
    ]
    AWSManagedRulesKnownBadInputsRuleSet = [
      "JavaDeserializationRCE_BODY",
      "Log4JRCE_BODY",
    ]
  }
  # After the rate limit, in this order: the cheapest verdicts first.
  waf_managed_groups = ["AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesCommonRuleSet"]
}

resource "aws_wafv2_web_acl" "api" {
  count = var.waf ? 1 : 0

  region = var.region

  name        = "${var.name}-api"
  description = "The ${var.name} API's load balancer: per-IP rate limit and AWS managed rules"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # A flood from one address stops here, before the managed rules inspect
  # it. Counted over 5 minutes per client IP (the load balancer is the
  # first hop, so the source address is the client's, or its NAT's).
  rule {
    name     = "rate-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = local.waf_managed_groups
    content {
      name     = rule.value
      priority = rule.key + 1

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value

          dynamic "rule_action_override" {
            for_each = lookup(local.waf_count_only, rule.value, [])
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  count = var.waf ? 1 : 0

  region = var.region

  resource_arn = aws_lb.api.arn
  web_acl_arn  = aws_wafv2_web_acl.api[0].arn
}

# Optional (var.waf_logging): only what the WAF blocked or counted, which is
# what a false positive or an attack is looked into with; the requests it
# let through are in the load balancer's access logs already. WAF requires
# the log group's name to start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  count = var.waf && var.waf_logging ? 1 : 0

  region = var.region

  name              = "aws-waf-logs-${var.name}-api"
  retention_in_days = 30
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  count = var.waf && var.waf_logging ? 1 : 0

  region = var.region

  resource_arn            = aws_wafv2_web_acl.api[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  # The API key travels in this header: never in a log.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  logging_filter {
    default_behavior = "DROP"

    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"

      condition {
        action_condition {
          action = "BLOCK"
        }
      }

      condition {
        action_condition {
          action = "COUNT"
        }
      }
    }
  }
}
