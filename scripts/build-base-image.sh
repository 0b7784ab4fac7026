#!/usr/bin/env bash
# ============================================================================
#  LOCAL STAND-IN FOR THE OFFICIAL NODE IMAGE: FOR TESTS ON THIS MACHINE ONLY.
#  NEVER PUSH IT, NEVER DEPLOY AN IMAGE BUILT FROM IT.
# ============================================================================
# On machines that reach no image registry, `node:<version>-bookworm-slim`
# cannot be pulled. This builds a look-alike from Debian and npm packages, so
# that the project's own Dockerfile builds and runs unchanged:
#
#   - Debian bookworm, minbase variant (debootstrap);
#   - the Node binary of the npm package `node-linux-<arch>` (what the npm
#     package `node` installs) at /usr/local/bin/node, same version as the tag;
#   - npm from the npm package `npm` under /usr/local/lib/node_modules/npm,
#     with `npm` and `npx` in /usr/local/bin;
#   - a `node` user and group with id 1000, as in the official image;
#   - this machine's CA bundle with NODE_EXTRA_CA_CERTS pointing at it: TLS
#     to the npm registry may be intercepted here. That certificate is why
#     the stand-in must never leave the machine.
#
# It is labelled org.docsvc.local-stand-in=true; images built FROM it inherit
# the label, and `make ecr-push` refuses any image that carries it.
#
# One stand-in per architecture (amd64, arm64; default: this machine's). One
# of another architecture is built by running its Debian packages' scripts
# under emulation: qemu-user-static registered with binfmt_misc (Debian's
# qemu-user-static and binfmt-support do both; docs/deploy.md, "Image
# architectures").
#
#   scripts/build-base-image.sh RUNTIME OFFICIAL_IMAGE [ARCH]   # build once (cached)
#   scripts/build-base-image.sh --name OFFICIAL_IMAGE [ARCH]    # print the stand-in's name
set -euo pipefail

# npm bundled with the Node release of the tag (the Node changelog says which).
NPM_VERSION=${NPM_VERSION:-11.19.0}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

case "$(uname -m)" in
  x86_64) host_arch=amd64 ;;
  aarch64) host_arch=arm64 ;;
  *) host_arch=unsupported ;;
esac

standin_name() {
  # node:24.21.0-bookworm-slim, arm64 -> localhost/docsvc-node-standin:24.21.0-bookworm-slim-arm64.
  # A name of its own: podman resolves short names against local images, and
  # the stand-in must never answer for the official `node:…`. The architecture
  # is in the tag: two images under one name would replace each other.
  echo "localhost/docsvc-node-standin:${1#*:}-$2"
}

if [ "${1:-}" = --name ]; then
  standin_name "${2:?usage: build-base-image.sh --name OFFICIAL_IMAGE [ARCH]}" "${3:-$host_arch}"
  exit 0
fi

runtime=${1:?usage: build-base-image.sh RUNTIME OFFICIAL_IMAGE [ARCH]}
official=${2:?usage: build-base-image.sh RUNTIME OFFICIAL_IMAGE [ARCH]}
arch=${3:-$host_arch}
image=$(standin_name "$official" "$arch")
tag=${official#*:}
node_version=${tag%%-*}
suite=$(echo "$tag" | cut -d- -f2)

if "$runtime" image inspect "$image" >/dev/null 2>&1; then
  echo "stand-in $image is already built (remove it to rebuild: $runtime rmi $image)"
  exit 0
fi

for tool in debootstrap npm tar; do
  command -v "$tool" >/dev/null || { echo "build-base-image: $tool is missing (apt-get install -y debootstrap; npm comes with Node)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build-base-image: debootstrap needs root" >&2; exit 1; }
# Debian's and Go's name for the architecture (amd64, arm64), and Node's (x64, arm64).
case "$arch" in
  amd64) node_arch=x64 qemu=qemu-x86_64 ;;
  arm64) node_arch=arm64 qemu=qemu-aarch64 ;;
  *) echo "build-base-image: unsupported architecture $arch (amd64 or arm64)" >&2; exit 1 ;;
esac
# debootstrap runs the packages' maintainer scripts inside the new root, and
# the last step runs its node: binaries of another architecture run only
# through a registered emulator.
if [ "$arch" != "$host_arch" ] && ! grep -qx enabled "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null; then
  echo "build-base-image: an $arch root file system needs $qemu registered with binfmt_misc" \
    "(apt-get install -y qemu-user-static binfmt-support); /proc/sys/fs/binfmt_misc/$qemu is not there" >&2
  exit 3
fi

cat >&2 <<EOF
============================================================================
 Building $image
 a LOCAL STAND-IN for $official, for tests on this machine only.
 It carries this machine's CA bundle. Never push it or anything built on it.
============================================================================
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

started=$SECONDS
step() { echo "stand-in [$1/4, $((SECONDS - started)) s] $2" >&2; }
# Measured: 36 s in all on one machine, 185 s on one with a slower mirror;
# debootstrap is most of it, and says nothing while it downloads.
# Under emulation (another architecture) debootstrap takes a few times longer.
step 1 "debootstrap --variant=minbase --arch=$arch $suite: about 110 Debian packages from $DEBIAN_MIRROR (30 s to 3 min; more under emulation)"
debootstrap --variant=minbase --arch="$arch" "$suite" "$rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }

step 2 "Node $node_version and npm $NPM_VERSION from their npm packages"
(cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" "npm@$NPM_VERSION" >/dev/null)
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/node-linux-$node_arch-$node_version.tgz" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

step 3 "the node user (uid 1000) and this machine's CA bundle"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

mkdir -p "$rootfs/usr/local/share/docsvc-standin"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/docsvc-standin/host-ca-certificates.crt"

# What the slim image leaves out too.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

# The binary's own ELF header (e_machine, bytes 18-19): an amd64 node in an
# arm64 root would otherwise be caught only when a node of that kind starts it.
machine=$(od -An -tx1 -j18 -N2 "$rootfs/usr/local/bin/node" | tr -d ' \n')
case "$arch:$machine" in
  amd64:3e00 | arm64:b700) ;;
  *) echo "build-base-image: /usr/local/bin/node has ELF machine $machine, not $arch" >&2; exit 1 ;;
esac
actual=$(chroot "$rootfs" /usr/local/bin/node --version)
[ "$actual" = "v$node_version" ] || { echo "build-base-image: node is $actual, expected v$node_version" >&2; exit 1; }

step 4 "importing the root file system as $image"
tar -C "$rootfs" -c . | "$runtime" import --os linux --arch "$arch" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/docsvc-standin/host-ca-certificates.crt' \
  --change 'LABEL org.docsvc.local-stand-in=true' \
  --change "LABEL org.docsvc.stand-in-for=$official" \
  --change 'CMD ["node"]' \
  - "$image" >/dev/null
echo "stand-in $image built in $((SECONDS - started)) s (node $actual, npm $NPM_VERSION)" >&2
