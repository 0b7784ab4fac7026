#!/usr/bin/env bash
# `make ecr-replicate`: TAG, from the primary's repository, into every other
# region's repository that does not have it yet (docs/deploy.md, "Adding a
# region: its images"). ECR's replication rule (terraform/multi-region.tf) copies only
# images pushed after the rule names the region: an image pushed before a
# region was added never reaches it by itself, and that region's pods could
# not pull the image k8s/image.env names.
#
# skopeo copies the manifest list with every architecture, byte for byte
# (--preserve-digests): the digest is the same in every registry, as ECR's
# own replication keeps it, so one <tag>@<digest> names the image everywhere.
#
# Settings, from the Makefile: REPOSITORY and REGION (the primary's), TAG,
# and REPOSITORIES: "<region> <repository>" lines, one per region (the
# terraform output region_clusters); the primary's line is skipped.
set -euo pipefail
: "${REPOSITORY:?}" "${REGION:?}" "${TAG:?}"
REPOSITORIES=${REPOSITORIES:-}

# shellcheck source-path=SCRIPTDIR source=ecr-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ecr-lib.sh"

login() { aws ecr get-login-password --region "$1" | skopeo login --username AWS --password-stdin "${2%%/*}" >/dev/null; }

source_digest=$(tagged_digest "$REGION" "$REPOSITORY")
[ -n "$source_digest" ] || { echo "ecr-replicate: $REPOSITORY:$TAG is not in ECR: make ecr-push first" >&2; exit 1; }
if [ -z "$REPOSITORIES" ]; then
  echo "ecr-replicate: one region only: nothing to copy"
  exit 0
fi
command -v skopeo >/dev/null || { echo "ecr-replicate needs skopeo (Debian: apt-get install -y skopeo)" >&2; exit 1; }

logged_in=false
while read -r region repository; do
  if [ -z "$region" ] || [ "$region" = "$REGION" ]; then continue; fi
  digest=$(tagged_digest "$region" "$repository")
  if [ "$digest" = "$source_digest" ]; then
    echo "ecr-replicate: $region has $repository:$TAG already"
    continue
  elif [ -n "$digest" ]; then
    # Tags are immutable: this cannot be overwritten, and must not be deployed.
    echo "ecr-replicate: $region has $repository:$TAG as $digest, not $source_digest" >&2
    exit 1
  fi
  $logged_in || { login "$REGION" "$REPOSITORY"; logged_in=true; }
  login "$region" "$repository"
  echo "ecr-replicate: copying $REPOSITORY:$TAG to $region"
  skopeo copy --all --preserve-digests "docker://$REPOSITORY:$TAG" "docker://$repository:$TAG"
  digest=$(tagged_digest "$region" "$repository")
  [ "$digest" = "$source_digest" ] || { echo "ecr-replicate: $region reports $digest for $TAG, not $source_digest" >&2; exit 1; }
done <<<"$REPOSITORIES"
echo "ecr-replicate: $TAG@$source_digest is in every region's repository"
