#!/usr/bin/env bash
# Performance benchmark: the Rust relay next to the same relay in Python (boto3 + awslambdaric),
# measured in one run, printed as one markdown table (metric, Rust, Python, ratio, target, pass/fail).
#
#   bash scripts/bench.sh            # everything (a few minutes once the release build is cached)
#
# Steps: .venv with the pinned stand-ins (scripts/bootstrap.sh) plus bench/requirements.txt
# (awslambdaric); `cargo build --release` of the relay and of the Lambda Runtime API stand-in
# (examples/runtime_api.rs, which serves the tests' tests/support/runtime_api.rs); the criterion
# benchmark of the pure pipeline (benches/pipeline.rs, thread CPU time, pinned to one core); then
# bench/run.py, which starts moto and that stand-in and measures cold start, first and warm
# invocations, CPU per invocation, peak RSS (incl. a 6 MiB SQS batch) and SQS/SNS call counts for
# the release binary and for bench/peer_python under `python -m awslambdaric`.
#
# Output: the table on stdout; progress on stderr; raw numbers in target/bench/results.json and the
# table in target/bench/report.md. Exit status 0 even when a target is missed (the table says so);
# non-zero only when something could not be measured.
#
# Env: BENCH_ARGS adds arguments to bench/run.py (e.g. "--cold-runs 5 --warm-invocations 100");
#      BENCH_QUICK=1 makes bench/run.py a quick smoke test of the harness, not a measurement;
#      BENCH_CORE picks the core for the single-core pipeline benchmark (default: the last one).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
say() { printf 'bench: %s\n' "$*" >&2; }

out="$repo/target/bench"
mkdir -p "$out"
start=$SECONDS

say "bootstrap (.venv with pinned moto, boto3)"
bash scripts/bootstrap.sh

python_args=()
req="$repo/bench/requirements.txt"
stamp="$repo/.venv/.bench-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    say "installing bench/requirements.txt (awslambdaric) into .venv"
    if .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r "$req" \
            >"$out/pip.log" 2>&1; then
        printf '%s\n' "$want" >"$stamp"
    else
        say "pip could not install awslambdaric; the Python peer is left out. Reason (tail of $out/pip.log):"
        tail -n 15 "$out/pip.log" >&2
    fi
fi
if ! .venv/bin/python -c 'import awslambdaric, runtime_client' 2>"$out/awslambdaric-import.log"; then
    say "awslambdaric does not import ($(tail -n 1 "$out/awslambdaric-import.log")); Rust only."
    say "it builds a C++ extension where PyPI has no wheel for this platform: apt-get install -y g++ make cmake autoconf automake libtool"
    python_args+=(--no-python)
fi

say "cargo build --release (relay, Runtime API stand-in)"
cargo build --release --quiet --bin s3-trace-relay
# On its own: built together, the example's dev-dependency features would reach the relay binary.
cargo build --release --quiet --example runtime_api

core="${BENCH_CORE:-$(($(nproc) - 1))}"
say "criterion: pipeline throughput (benches/pipeline.rs) on core $core"
cargo bench --quiet --bench pipeline --no-run
pin=()
if command -v taskset >/dev/null 2>&1; then
    pin=(taskset -c "$core")
fi
"${pin[@]}" cargo bench --quiet --bench pipeline -- --noplot >"$out/criterion.txt" 2>&1 || {
    cat "$out/criterion.txt" >&2
    exit 1
}
grep -E '^prepare/|thrpt' "$out/criterion.txt" >&2 || true

say "end-to-end against moto (bench/run.py)"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of words
.venv/bin/python bench/run.py \
    --binary "$repo/target/release/s3-trace-relay" \
    --runtime-api "$repo/target/release/examples/runtime_api" \
    --criterion-dir "$repo/target/criterion" \
    --core "$core" \
    --json "$out/results.json" \
    "${python_args[@]}" ${BENCH_ARGS:-} | tee "$out/report.md"

say "done in $((SECONDS - start)) s (table also in target/bench/report.md)"
