#!/usr/bin/env bash
# What CI runs (.ci/run calls this): installs what the tests need on a fresh Debian
# machine with the Rust toolchain, then checks formatting, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# --- system packages the tests drive: nginx (a real TLS + HTTP/2 server), curl, openssl,
# kubectl; python3 (HTTP servers for timelines and in pods of apisim --run-jobs,
# kubernetes-validate); buildah and umoci build and unpack the runner image (tests/it/image.rs),
# which carries Debian's CA bundle. A test whose tool is missing fails rather than passing
# unchecked.
need_apt=()
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
# kubectl v1.32 ships with this machine image; Debian's kubernetes-client (1.20)
# conflicts with it, so only install it where no kubectl exists.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
# Headless Chromium renders `engine report --html` for its screenshot test.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Python's prometheus_client parses `engine run --metrics-listen`'s exposition in a test.
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  log "installing python3 prometheus-client"
  command -v pip3 >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }
  pip3 install -q prometheus-client 2>/dev/null || pip3 install -q --break-system-packages prometheus-client
fi
# Debian starts nginx as a service on install; the tests start their own instances.
if pgrep -x nginx >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || nginx -s quit >/dev/null 2>&1 || true; fi

# --- Python tools the tests drive: Kubernetes' schemas for `engine job manifest`.
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  log "installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes-validate
fi

# --- Rust components
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# CI builds once from clean: incremental caches would only double the target directory.
export CARGO_INCREMENTAL=0

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (build)"
# The end-to-end tests in tests/ run the real binaries from target/debug.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-run

log "cargo test"
# Engine tests pin threads and open many sockets; two test threads fit a 2-core machine.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# One test binary per crate (tests/it, engine/tests/it, ...). --no-fail-fast: a failing crate
# must not hide the ones after it. The distributed scenarios measure how late runner processes
# start, which a concurrent test on the same two CPUs would distort: they run alone, after.
cargo test --workspace --locked --no-fail-fast -- --test-threads="${KREPLAY_TEST_THREADS:-2}" --skip distributed:: 2>&1 | tee "$out" || status=$?
# (--workspace --test it, not -p kreplay: the same feature set as above, so nothing is rebuilt.)
cargo test --workspace --test it --locked -- --test-threads=1 distributed:: 2>&1 | tee -a "$out" || status=$?
# The fuzz targets' smoke pass (30 s each) where a nightly toolchain exists; the project never
# requires nightly, and a machine without it says so.
if [ "$status" -eq 0 ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  log "fuzz smoke (scripts/fuzz.sh --smoke)"
  if scripts/fuzz.sh --smoke; then fuzz=passed; else status=1; fuzz=FAILED; fi
elif [ "$status" -eq 0 ]; then
  fuzz="skipped: no nightly toolchain"
else
  fuzz="skipped: tests failed"
fi
echo "fuzz smoke: $fuzz"
# One closing line for the whole workspace (cargo prints one per test binary); a binary that
# crashed before its summary line shows up in "binaries failed".
awk '/^test result:/ { n++; for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1) } }
     /^error: test failed, to rerun/ { b++ }
     END { printf "test binaries: %d run, %d failed\n", n, b; printf "kreplay: %d passed, %d failed, %d skipped\n", p, f, g }' "$out"
exit "$status"
