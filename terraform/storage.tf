# The service's DynamoDB tables, in one place. The key is the name the service
# uses locally (the default in src/config.ts); in AWS each table is
# "<name>-<key>". Keys and TTL attributes must match what src/ reads and writes.
locals {
  tables = {
    documents = {
      hash_key   = "pk"
      ttl        = "deleteAt" # tombstones of deleted documents
      attributes = { pk = "S", tombstoneShard = "S", deleteAt = "N", uploadShard = "S", expiresAt = "N", listPk = "S", listSk = "S", outboxShard = "S", outboxSince = "N" }
      # Sparse: only tombstones carry tombstoneShard; the lifecycle worker
      # reads the oldest deleteAt of each shard (keys are all it needs).
      # Sparse too: only resumable uploads that may still hold bytes in S3
      # carry uploadShard; the lifecycle worker ends those past their expiry.
      # listing: active documents by tenant, newest first (GET /documents);
      # outbox: items whose document event is pending, with what the relay
      # publishes and never the content (docs/capacity.md has their cost).
      indexes = [
        { name = "tombstones", hash_key = "tombstoneShard", range_key = "deleteAt", projection = "KEYS_ONLY" },
        { name = "uploads", hash_key = "uploadShard", range_key = "expiresAt", projection = "KEYS_ONLY" },
        { name = "listing", hash_key = "listPk", range_key = "listSk", projection = "KEYS_ONLY" },
        {
          name = "outbox", hash_key = "outboxShard", range_key = "outboxSince", projection = "INCLUDE",
          # DOCUMENT_EVENT_ATTRIBUTES in src/documents/document-events.ts
          non_key_attributes = ["eventStatus", "leaseUntil", "eventRegion", "traceContext", "kind", "tenant", "id", "contentType", "size", "checksum", "createdAt", "retainUntil", "deletedAt"]
        },
      ]
    }
    idempotency-keys = {
      hash_key   = "pk"
      ttl        = "expiresAt"
      attributes = { pk = "S" }
      indexes    = []
    }
    orders = {
      hash_key   = "pk"
      ttl        = "expiresAt"
      attributes = { pk = "S", outboxShard = "S", outboxSince = "N" }
      # Sparse: only orders whose event is still pending carry outboxShard,
      # so the relay queries exactly the outbox.
      indexes = [{ name = "outbox", hash_key = "outboxShard", range_key = "outboxSince", projection = "ALL" }] # the relay publishes the whole order
    }
    order-consumer = {
      hash_key   = "pk"
      ttl        = "expiresAt" # processed event ids, kept for deduplication
      attributes = { pk = "S" }
      indexes    = []
    }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name         = "${local.name}-${each.key}"
  billing_mode = "PAY_PER_REQUEST" # no capacity to plan, no throttling at bursts
  hash_key     = each.value.hash_key

  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.indexes
    content {
      name               = global_secondary_index.value.name
      hash_key           = global_secondary_index.value.hash_key
      range_key          = global_secondary_index.value.range_key
      projection_type    = global_secondary_index.value.projection
      non_key_attributes = try(global_secondary_index.value.non_key_attributes, null)
    }
  }

  ttl {
    attribute_name = each.value.ttl
    enabled        = true
  }

  # Of several regions (multi-region.tf), the document tables are global
  # tables: a replica in every other region, fed by the table's stream.
  stream_enabled   = local.multi_region && contains(local.global_tables, each.key)
  stream_view_type = local.multi_region && contains(local.global_tables, each.key) ? "NEW_AND_OLD_IMAGES" : null

  dynamic "replica" {
    for_each = contains(local.global_tables, each.key) ? local.secondary_regions : []
    content {
      region_name            = replica.value
      point_in_time_recovery = true
      propagate_tags         = true
      # A replica is encrypted in its own region, under that region's key (keys.tf).
      kms_key_arn = aws_kms_key.data[replica.value].arn
      # The table's own protection does not reach its replicas: each says so itself.
      deletion_protection_enabled = var.deletion_protection
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  # The region's customer-managed key (keys.tf): its use shows in CloudTrail,
  # and its policy, not AWS's, says who may use it. Inline document content
  # sits here, which is why a tenant with a key of its own has none inline.
  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data[var.region].arn
  }
}
