# The image registry the pods pull from (the node role can read ECR); with
# several regions, each region's registry gets a copy (multi-region.tf).
resource "aws_ecr_repository" "app" {
  name = local.name
  # A tag always means the same image: what runs is what was reviewed.
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !var.deletion_protection

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}
