# document.created and document.deleted (README, "Document events"), for
# other systems: each region's relay publishes the events of the documents
# homed in that region to the region's own topic. Subscribers bring their
# queues and may filter on the message attributes `type` and `tenant`.
resource "aws_sns_topic" "document_changes" {
  region = var.region

  name              = "${var.name}-document-changes"
  kms_master_key_id = "alias/aws/sns"
}
