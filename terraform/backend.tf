# Where terraform keeps its state: an S3 bucket, for anything but a trial.
# The state holds the first Redis AUTH token (redis.tf) and every resource's
# identifiers, so it must be private, encrypted, versioned (a bad apply can
# be rolled back) and locked (two applies at once corrupt it). The bucket,
# key and region come from terraform/backend.hcl (backend.hcl.example), which
# `make tf-init` passes; a trial can keep a local state instead
# (local_override.tf.example). docs/deploy.md, "Where the state lives".
terraform {
  backend "s3" {
    # S3's own conditional writes lock the state (a .tflock object beside
    # it): no DynamoDB lock table to create. Terraform >= 1.10.
    use_lockfile = true
    encrypt      = true
  }
}
