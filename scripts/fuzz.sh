#!/usr/bin/env bash
# Bounded coverage-guided fuzzing of the cargo-fuzz (libFuzzer) targets in fuzz/:
#   trace_header    X-Amzn-Trace-Id parsing and canonical output
#   traceparent     W3C traceparent parsing and round trip
#   inbound_decode  invocation payload decoding and the pure relay pipeline (decode → trace → route → batch)
#
# Usage: scripts/fuzz.sh [SECONDS]      each target runs SECONDS (default 30), one after the other.
#
# Installs the pinned cargo-fuzz into ~/.cargo/bin when it is missing, builds the fuzz crate once,
# then runs each target from its committed seed corpus (fuzz/corpus/<target>, only read) into a
# scratch corpus (fuzz/target/corpus/<target>, kept between runs on the same machine) with its
# dictionary (fuzz/dict/<target>.dict). Prints one summary line per target; exits non-zero when a
# target crashes (panic, sanitizer report, timeout or out-of-memory), leaving the input that did it
# in fuzz/artifacts/<target>/ and printing the command that replays it.
#
# Environment:
#   FUZZ_TARGETS    space-separated subset of the targets (default: all three)
#   FUZZ_SANITIZER  address (default) or none; none builds and runs faster, and safe Rust gains
#                   little from AddressSanitizer
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sanitizer-coverage); the machine has only
# the stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable rustc accept them.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS="trace_header traceparent inbound_decode"

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS per target, a whole number >= 1]; got '$seconds'" >&2
    exit 2
fi
targets="${FUZZ_TARGETS:-$ALL_TARGETS}"
sanitizer="${FUZZ_SANITIZER:-address}"
case "$sanitizer" in
    address | none) ;;
    *) echo "FUZZ_SANITIZER must be 'address' or 'none', got '$sanitizer'" >&2; exit 2 ;;
esac
for t in $targets; do
    case " $ALL_TARGETS " in
        *" $t "*) ;;
        *) echo "unknown fuzz target '$t': expected some of: $ALL_TARGETS" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into ~/.cargo/bin"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

cd "$repo/fuzz"
started=$(date +%s)
echo "==> building fuzz targets (sanitizer: $sanitizer)"
# shellcheck disable=SC2086 # $targets is a list of names
for t in $targets; do
    cargo fuzz build --sanitizer "$sanitizer" "$t"
done
echo "==> built in $(($(date +%s) - started)) s; fuzzing each target for ${seconds} s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=0
for t in $targets; do
    scratch="target/corpus/$t"
    mkdir -p "$scratch" "artifacts/$t"
    log="$logs/$t.log"
    status=0
    # The scratch corpus comes first: libFuzzer writes new inputs only to the first directory.
    # New inputs go to the scratch directory (the first); the committed seeds and, for the decoder,
    # the sample events the rest of the project uses are read as they are, not copied.
    seeds=("corpus/$t")
    if [ "$t" = inbound_decode ]; then
        seeds+=(../events ../tests/fixtures/emitters ../tests/fixtures/eventbridge)
    fi
    cargo fuzz run --sanitizer "$sanitizer" "$t" "$scratch" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -dict="dict/$t.dict" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -n1 || true)
    if [ "$status" -eq 0 ]; then
        printf 'fuzz %-15s ok     %s execs (%s/s) in %s s, %s, peak rss %s MB\n' \
            "$t" "${execs:-?}" "${rate:-?}" "$seconds" "${cov:-cov: ?}" "${rss:-?}"
    else
        failed=1
        artifact=$(grep -o 'artifacts/[^ ]*' "$log" | tail -n1 || true)
        printf 'fuzz %-15s FAILED (exit %s) after %s execs, input: fuzz/%s\n' \
            "$t" "$status" "${execs:-?}" "${artifact:-<none written>}"
        if [ -n "$artifact" ]; then
            printf '  replay: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer %s %s %s\n' \
                "$sanitizer" "$t" "$artifact"
        fi
        # libFuzzer's report (panic message, sanitizer error), without the progress lines.
        awk '/panicked at|ERROR: |==[0-9]+==ERROR/ { show = 1 } /^Failing input:|^Stack backtrace:/ { show = 0 } show' "$log" \
            | grep -v '^#' | head -n 40 | sed 's/^/  | /'
    fi
done
echo "==> fuzzing done in $(($(date +%s) - started)) s (build included)"
exit "$failed"
