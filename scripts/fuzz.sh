#!/usr/bin/env bash
# Coverage-guided fuzzing of kreplay's input parsers (fuzz/README.md): cargo fuzz (libFuzzer)
# on the nightly toolchain, which only this script needs.
#
#   scripts/fuzz.sh [--smoke] [TARGET] [SECONDS]
#
# Runs TARGET (default: every target in fuzz/Cargo.toml) for SECONDS each (default 300;
# --smoke: 30), starting from fuzz/corpus/TARGET. New inputs go to a scratch corpus under
# fuzz/target (not the committed one: `cargo fuzz cmin` decides what is kept); a crash stops
# the run with a non-zero exit and leaves its input under fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
if [ "${1:-}" = "--smoke" ]; then
  smoke=1
  shift
fi
target="${1:-}"
seconds="${2:-}"
if [ -z "$seconds" ]; then
  if [ "$smoke" = 1 ]; then seconds=30; else seconds=300; fi
fi
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz.sh: the nightly toolchain is not installed (cargo fuzz needs it):" >&2
  echo "  rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

targets=$(cd fuzz && cargo +nightly fuzz list)
if [ -n "$target" ]; then
  if ! grep -qx "$target" <<<"$targets"; then
    echo "fuzz.sh: no fuzz target '$target'; the targets are:" $targets >&2
    exit 2
  fi
  targets="$target"
fi

# No sanitizer: the code under test is safe Rust (bounds-checked reads of the mapped
# timeline included), and the time goes to executions; overflow checks and debug
# assertions stay on (-a). A panic is what libFuzzer reports as a crash.
flags=(--sanitizer none --debug-assertions)
(cd fuzz && cargo +nightly fuzz build "${flags[@]}")

failed=()
for t in $targets; do
  scratch="fuzz/target/corpus/$t"
  mkdir -p "$scratch" "fuzz/artifacts/$t"
  echo "== fuzz $t for ${seconds}s" >&2
  if ! (cd fuzz && cargo +nightly fuzz run "${flags[@]}" "$t" \
    "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
    -rss_limit_mb=2048 -timeout=10 2>&1 | grep -v "# Uses:" | tail -n 12); then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds}s without a crash" >&2
