#!/usr/bin/env bash
# Stages the runner image's root filesystem in a directory: the one definition of what the
# image holds, used by scripts/image.sh (buildah, offline) and by the Dockerfile's build stage,
# so the two images cannot drift apart. docs/image.md describes the layout.
#
#   scripts/image-rootfs.sh BIN_DIR ROOTFS_DIR
#
# BIN_DIR holds the `engine` and `preprocess` binaries (target/release, or target/debug in
# tests). ROOTFS_DIR must not exist or be empty. Everything is staged owned by whoever runs
# this; the image builders set the owners (root, and 65532 for /var/lib/kreplay).
set -euo pipefail
umask 022

# The image's non-root user, as in distroless's `nonroot` (also the Dockerfile's USER).
readonly RUNNER_UID=65532
readonly BINARIES=(engine preprocess)
readonly CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

die() { printf 'image-rootfs: %s\n' "$*" >&2; exit 2; }

[ $# -eq 2 ] || die "usage: $0 BIN_DIR ROOTFS_DIR"
bin_dir=$1
rootfs=$2
[ -d "$bin_dir" ] || die "$bin_dir: not a directory (it should hold the engine and preprocess binaries)"
if [ -e "$rootfs" ] && [ -n "$(ls -A "$rootfs")" ]; then
  die "$rootfs: exists and is not empty (the image root is staged into a new directory)"
fi
command -v ldd >/dev/null || die "ldd not found (Debian: apt-get install libc-bin)"
[ -f "$CA_BUNDLE" ] || die "$CA_BUNDLE not found: install Debian's ca-certificates (https timeline downloads need it)"

# /var/lib/kreplay itself is added by the image builders, owned by the runner.
mkdir -p "$rootfs"/{usr/local/bin,etc/ssl/certs,var/lib}
mkdir -p -m 1777 "$rootfs/tmp"

# Copies FILE (following symlinks) to the same path inside the root.
copy_in() {
  mkdir -p "$rootfs$(dirname "$1")"
  cp -L "$1" "$rootfs$1"
}

for name in "${BINARIES[@]}"; do
  bin="$bin_dir/$name"
  [ -x "$bin" ] || die "$bin: missing or not executable (build it: cargo build --release -p engine -p preprocess)"
  cp -L "$bin" "$rootfs/usr/local/bin/$name"
  # The release profile keeps line tables for profiling on the lab machine; in the image they
  # are most of its size. Symbols stay, so backtraces still name functions.
  if command -v strip >/dev/null; then strip --strip-debug "$rootfs/usr/local/bin/$name"; fi
  # Exactly the shared objects the dynamic loader maps, at the paths it looks for them, and the
  # loader itself (the ELF interpreter line). A static binary has none.
  if ldd_out=$(ldd "$bin" 2>&1); then
    if grep -q 'not found' <<<"$ldd_out"; then
      die "$bin: a shared library is missing on this machine: $ldd_out"
    fi
    while read -r lib; do
      copy_in "$lib"
    done < <(grep -o '/[^ ]*' <<<"$ldd_out" | sort -u)
  elif ! grep -q 'not a dynamic executable' <<<"$ldd_out"; then
    die "ldd $bin failed: $ldd_out"
  fi
done

cp -L "$CA_BUNDLE" "$rootfs$CA_BUNDLE"

# Users and groups: the engine never looks a user up, but tools (kubectl debug, ps) and
# runtimes that resolve USER by name read these.
cat >"$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:$RUNNER_UID:$RUNNER_UID:kreplay runner:/var/lib/kreplay:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<EOF
root:x:0:
nonroot:x:$RUNNER_UID:
EOF
# Host names from /etc/hosts first, then DNS (glibc's built-in default asks DNS first).
cat >"$rootfs/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
