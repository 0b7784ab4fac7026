#!/usr/bin/env bash
# Prints the base image `make image` builds FROM: the official Node image
# when it is present or can be pulled, else a local stand-in built by
# scripts/build-base-image.sh (cached: built once per machine).
#
#   scripts/base-image.sh RUNTIME NODE_IMAGE [ARCH]
#
# ARCH (amd64, arm64; default: this machine's) picks the stand-in. The
# official image is one name for every architecture: the build that names it
# with --platform takes the one it needs.
#
# Messages go to stderr; stdout is only the image name.
set -euo pipefail
runtime=${1:?usage: base-image.sh RUNTIME NODE_IMAGE}
official=${2:?usage: base-image.sh RUNTIME NODE_IMAGE [ARCH]}
arch=${3:-}
here=$(cd "$(dirname "$0")" && pwd)

if "$runtime" image inspect "$official" >/dev/null 2>&1; then
  echo "$official"
  exit 0
fi
# A stand-in built before is used at once: no pull is tried again (a registry
# that hangs would cost the full timeout on every build). Remove it to try.
standin=$("$here/build-base-image.sh" --name "$official" ${arch:+"$arch"})
if "$runtime" image inspect "$standin" >/dev/null 2>&1; then
  echo "base-image: using the local stand-in $standin built earlier ($runtime rmi it to try pulling $official again)" >&2
  echo "$standin"
  exit 0
fi
# A registry that is unreachable fails at once; one that hangs must not stall the build.
echo "base-image: $official is not here; trying to pull it (gives up after 120 s)" >&2
if timeout 120 "$runtime" pull ${arch:+--platform "linux/$arch"} "docker.io/library/$official" >/dev/null 2>&1; then
  echo "$official"
  exit 0
fi
echo "base-image: cannot pull $official; using the local stand-in instead" >&2
"$here/build-base-image.sh" "$runtime" "$official" ${arch:+"$arch"} >&2
"$here/build-base-image.sh" --name "$official" ${arch:+"$arch"}
