#!/usr/bin/env bash
# `make ecr-push`: the image for every architecture of ARCHES, from the
# official base, pushed to ECR as one manifest list under TAG, and
# IMAGE=<repository>:<tag>@<digest of that list> written to IMAGE_ENV
# (docs/deploy.md, step 4). Each node pulls the image of its own
# architecture from the one reference.
#
# Re-running it on the same commit succeeds: the repository's tags are
# immutable, so a tag that is already there is the image of that commit.
# Nothing is built or pushed again, and IMAGE_ENV gets its digest.
#
# Settings, from the Makefile: RUNTIME (podman or docker), REPOSITORY,
# REGION, TAG, IMAGE_ENV, BUILD_FLAGS, ARCHES (e.g. "amd64 arm64").
set -euo pipefail
: "${RUNTIME:?}" "${REPOSITORY:?}" "${REGION:?}" "${TAG:?}" "${IMAGE_ENV:?}" "${ARCHES:?}"
BUILD_FLAGS=${BUILD_FLAGS:-}
read -ra arches <<<"$ARCHES"

# shellcheck source-path=SCRIPTDIR source=ecr-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ecr-lib.sh"

record() {
  echo "IMAGE=$REPOSITORY:$TAG@$1" >"$IMAGE_ENV"
  echo "$IMAGE_ENV names $REPOSITORY:$TAG@$1"
}

digest=$(tagged_digest "$REGION" "$REPOSITORY")
if [ -n "$digest" ]; then
  echo "ecr-push: $REPOSITORY:$TAG is already in ECR (tags are immutable: it is this commit's image); nothing built or pushed"
  record "$digest"
  exit 0
fi

aws ecr get-login-password --region "$REGION" | "$RUNTIME" login --username AWS --password-stdin "${REPOSITORY%%/*}"

platforms=$(printf 'linux/%s,' "${arches[@]}")
platforms=${platforms%,}
if [ "$RUNTIME" = docker ]; then
  # Docker's own image store holds one architecture per name: buildx builds
  # the list and pushes it as it builds. --pull: the base is the registry's
  # official image, never a local one (the stand-in is podman's here).
  # shellcheck disable=SC2086 # BUILD_FLAGS is a list of flags
  docker buildx build $BUILD_FLAGS --pull --provenance=false --platform "$platforms" -t "$REPOSITORY:$TAG" --push .
else
  for arch in "${arches[@]}"; do
    # Local names only: the list is pushed by digest under the one tag.
    # shellcheck disable=SC2086
    "$RUNTIME" build $BUILD_FLAGS --platform "linux/$arch" -t "$REPOSITORY:$TAG-$arch" .
    if [ "$("$RUNTIME" image inspect --format '{{ index .Config.Labels "org.docsvc.local-stand-in" }}' "$REPOSITORY:$TAG-$arch")" = true ]; then
      echo "ecr-push: $REPOSITORY:$TAG-$arch is built on the local stand-in base: never pushed" >&2
      exit 1
    fi
  done
  # A list left by an earlier run that failed would be added to, not replaced.
  "$RUNTIME" manifest rm "$REPOSITORY:$TAG" >/dev/null 2>&1 || true
  "$RUNTIME" manifest create "$REPOSITORY:$TAG"
  for arch in "${arches[@]}"; do
    "$RUNTIME" manifest add "$REPOSITORY:$TAG" "containers-storage:$REPOSITORY:$TAG-$arch"
  done
  # v2s2: Docker's format, as the images are built (HEALTHCHECK).
  "$RUNTIME" manifest push --all --format v2s2 "$REPOSITORY:$TAG" "docker://$REPOSITORY:$TAG"
fi

digest=$(tagged_digest "$REGION" "$REPOSITORY")
[ -n "$digest" ] || { echo "ecr-push: ECR reports no image for $REPOSITORY:$TAG after the push" >&2; exit 1; }
echo "pushed $REPOSITORY:$TAG ($platforms)"
record "$digest"
