# shellcheck shell=bash
# What scripts/ecr-push.sh and scripts/ecr-replicate.sh both ask ECR.
# Sourced, not run; TAG comes from the sourcing script's settings.

# tagged_digest REGION REPOSITORY: the digest ECR has for TAG in that
# region's repository (<registry>/<name>); nothing when ECR says there is no
# such image. Any other failure (credentials, a missing repository) is
# printed and returns 1, which stops a script run under set -e.
tagged_digest() {
  local out
  if out=$(aws ecr describe-images --region "$1" --repository-name "${2#*/}" \
    --image-ids imageTag="$TAG" --query 'imageDetails[0].imageDigest' --output text 2>&1); then
    echo "$out"
  elif [[ $out == *ImageNotFoundException* ]]; then
    return 0
  else
    echo "$out" >&2
    return 1
  fi
}
