#!/usr/bin/env bash
# Builds kreplay's runner image offline with Debian's buildah, the same image the Dockerfile
# builds (scripts/image-rootfs.sh stages the root for both): FROM scratch, vfs storage in a
# temporary directory, pushed to an OCI layout (and optionally to a registry).
#
#   scripts/image.sh [--bin-dir DIR] [--oci DIR] [--tag TAG] [--push REGISTRY/kreplay:TAG]
#
#   --bin-dir DIR  take engine and preprocess from DIR (default: build them in release and
#                  take target/release)
#   --oci DIR      OCI layout to write the image to (default: target/image/oci); the image
#                  is named kreplay:TAG in it (`umoci unpack --image DIR:kreplay:TAG ROOT`)
#   --tag TAG      image tag (default: the workspace version)
#   --push REF     also push to a registry (`buildah login` first; REF without a transport
#                  means docker://REF)
#
# Prints the manifest digest and the sizes. Runs as root, or rootless where buildah has
# subordinate ids. Needs: buildah (apt-get install buildah), ldd, Debian's ca-certificates.
set -euo pipefail
# Paths on the command line are the caller's; the repository is found from here.
repo=$(cd "$(dirname "$0")/.." && pwd)

# Must match the Dockerfile.
readonly RUNNER_UID=65532
readonly RUNNER_HOME=/var/lib/kreplay
readonly ENTRYPOINT='["/usr/local/bin/engine"]'
readonly CMD='["--help"]'

die() { printf 'image.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '6,18s/^# \{0,1\}//p' "$0"; }

bin_dir=""
oci_dir=$repo/target/image/oci
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
tag=$version
push_ref=""
while [ $# -gt 0 ]; do
  case $1 in
    --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
    --oci) oci_dir=${2:?--oci needs a directory}; shift 2 ;;
    --tag) tag=${2:?--tag needs a tag}; shift 2 ;;
    --push) push_ref=${2:?--push needs an image reference}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--tag $tag: not a valid image tag ([A-Za-z0-9_.-], at most 128)"
command -v buildah >/dev/null || die "buildah not found (Debian: apt-get install buildah)"

if [ -z "$bin_dir" ]; then
  cargo build --release --locked --manifest-path "$repo/Cargo.toml" -p engine -p preprocess
  bin_dir=${CARGO_TARGET_DIR:-$repo/target}/release
fi

# No step runs a command inside the image, so nothing needs namespaces beyond buildah's own;
# chroot isolation keeps buildah working as root in a container without user namespaces.
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

work=$(mktemp -d "${TMPDIR:-/tmp}/kreplay-image.XXXXXX")
bah=(buildah --storage-driver vfs --root "$work/storage" --runroot "$work/run")
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then "${bah[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  # Rootless vfs layers belong to subordinate ids: only buildah's namespace may remove them.
  rm -rf "$work" 2>/dev/null || "${bah[@]}" unshare rm -rf "$work" || true
}
trap cleanup EXIT

"$repo/scripts/image-rootfs.sh" "$bin_dir" "$work/rootfs"
mkdir "$work/runner-home"

# Reproducible when the inputs are: timestamps from SOURCE_DATE_EPOCH or the last commit.
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

ctr=$("${bah[@]}" from scratch)
"${bah[@]}" copy --quiet --chown 0:0 "$ctr" "$work/rootfs/" / >/dev/null
"${bah[@]}" copy --quiet --chown "$RUNNER_UID:$RUNNER_UID" "$ctr" "$work/runner-home/" "$RUNNER_HOME/" >/dev/null
"${bah[@]}" config \
  --user "$RUNNER_UID:$RUNNER_UID" \
  --workingdir "$RUNNER_HOME" \
  --env PATH=/usr/local/bin \
  --entrypoint "$ENTRYPOINT" \
  --cmd "$CMD" \
  --label org.opencontainers.image.title=kreplay \
  --label "org.opencontainers.image.description=kreplay runner: replays a preprocessed Kubernetes API timeline (engine, preprocess)" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  "$ctr"

image=localhost/kreplay:$tag
"${bah[@]}" commit --quiet --rm --timestamp "$epoch" "$ctr" "$image" >/dev/null
ctr=""

mkdir -p "$oci_dir"
"${bah[@]}" push --quiet --digestfile "$work/digest" "$image" "oci:$oci_dir:kreplay:$tag"
digest=$(cat "$work/digest")
if [ -n "$push_ref" ]; then
  case $push_ref in *://*) dest=$push_ref ;; *) dest=docker://$push_ref ;; esac
  "${bah[@]}" push --quiet --digestfile "$work/pushed" "$image" "$dest"
  echo "pushed $dest ($(cat "$work/pushed"))"
fi

# Sizes: the layers as stored (gzip) from the manifest, and the root unpacked.
manifest="$oci_dir/blobs/sha256/${digest#sha256:}"
layer_bytes=$(sed -n 's/.*"layers":\[\([^]]*\)\].*/\1/p' "$manifest" | grep -o '"size":[0-9]*' | awk -F: '{ s += $2 } END { print s }')
unpacked_bytes=$(du -sb "$work/rootfs" | cut -f1)
echo "image kreplay:$tag in $oci_dir"
echo "digest $digest"
echo "size $layer_bytes bytes compressed, $unpacked_bytes bytes unpacked"
