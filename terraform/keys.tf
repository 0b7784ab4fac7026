# Customer-managed KMS keys, in every region of the service
# (docs/encryption-and-retention.md). One key per region encrypts its data at
# rest: the documents bucket by default (with S3 Bucket Keys, so that S3 asks
# KMS for a bucket-level key now and then instead of a data key per object)
# and the DynamoDB tables (a global table's replica in each region under that
# region's key). With tenant_kms_keys, each of those tenants also has a key of
# its own in every region, which the service names on every write of the
# tenant's content (TENANT_KMS_KEYS): disabling it in every region makes that
# content unreadable. The keys live here, not in modules/region, because
# each region's roles and replication rules name the keys of the others.
#
# Aliases have the same name in every region, and the pods are configured
# with those names (outputs.tf): an instance writing into another region's
# bucket (a resumable upload homed there) names that region's key.
locals {
  tenant_keys = {
    for pair in setproduct(local.regions, sort(tolist(var.tenant_kms_keys))) : "${pair[0]}:${pair[1]}" => { region = pair[0], tenant = pair[1] }
  }
  # By region: the data key, and each tenant's key, as ARNs (IAM grants keys, not aliases).
  content_keys = {
    for region in local.regions : region => {
      data    = aws_kms_key.data[region].arn
      tenants = { for tenant in var.tenant_kms_keys : tenant => aws_kms_key.tenant["${region}:${tenant}"].arn }
    }
  }
  data_key_alias     = "alias/${local.name}-data"
  tenant_key_aliases = { for tenant in var.tenant_kms_keys : tenant => "alias/${local.name}-tenant-${tenant}" }
}

# The account administers its keys, and IAM policies grant their use (the
# components' roles, the replication role); no principal of another account.
# With CloudFront (modules/region/cdn.tf), its origin access control reads
# the SSE-KMS objects of the region's documents bucket, and so decrypts them.
data "aws_iam_policy_document" "kms_key" {
  for_each = toset(local.regions)

  source_policy_documents = var.cdn ? [data.aws_iam_policy_document.kms_key_cdn[each.key].json] : null

  statement {
    sid       = "AccountAdministersAndDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account_id}:root"]
    }
  }
}

# CloudFront as a service, for a distribution of this account (the exact
# distribution would make the key depend on the module that uses the key),
# and only for objects of this region's documents bucket (the encryption
# context S3 gives KMS: the bucket with an S3 Bucket Key, the object
# without). Which distribution may read that bucket at all is the bucket
# policy's to say: that distribution alone (modules/region/storage.tf).
data "aws_iam_policy_document" "kms_key_cdn" {
  for_each = var.cdn ? toset(local.regions) : toset([])

  statement {
    sid       = "CloudFrontDecryptsDocuments"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "AWS:SourceArn"
      values   = ["arn:aws:cloudfront::${local.account_id}:distribution/*"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["arn:aws:s3:::${local.bucket_names[each.key]}", "arn:aws:s3:::${local.bucket_names[each.key]}/*"]
    }
  }
}

resource "aws_kms_key" "data" {
  for_each = toset(local.regions)

  region                  = each.key
  description             = "${local.name}: data at rest in ${each.key} (the documents bucket by default, the DynamoDB tables)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_key[each.key].json
}

resource "aws_kms_alias" "data" {
  for_each = toset(local.regions)

  region        = each.key
  name          = local.data_key_alias
  target_key_id = aws_kms_key.data[each.key].key_id
}

resource "aws_kms_key" "tenant" {
  for_each = local.tenant_keys

  region                  = each.value.region
  description             = "${local.name}: the content of tenant ${each.value.tenant} in ${each.value.region}; disabled, its documents cannot be read"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_key[each.value.region].json
}

resource "aws_kms_alias" "tenant" {
  for_each = local.tenant_keys

  region        = each.value.region
  name          = local.tenant_key_aliases[each.value.tenant]
  target_key_id = aws_kms_key.tenant[each.key].key_id
}
