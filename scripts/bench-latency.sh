#!/usr/bin/env bash
# Latency benchmark: the relay next to a Python/boto3 and a Node.js/AWS SDK v3 peer, each
# sequential and concurrent, against a stand-in for SQS and SNS that holds every call a fixed
# delay; one markdown table (duration, ratio to the floor ⌈calls / in-flight⌉ × delay, time to the
# first call, connections, CPU, peak RSS, init) on stdout. See bench/latency/latency.py.
#
#   scripts/bench-latency.sh            # ~6-8 minutes once the release builds are cached
#   scripts/bench-latency.sh --quick    # n = 10 and 1,000 only: a smoke test of the harness
#   scripts/bench-latency.sh --full     # also the sequential 10,000-record worst case (~8 min more)
#   scripts/bench-latency.sh --delay-ms 30 --no-moto
#
# Options are passed on to bench/latency/latency.py: --quick, --full, --delay-ms N (default 15),
# --no-moto (skip checking each function's messages against moto first), --only "rust 16,node all",
# --init-runs N, --max-sequential-s S, --sizes 10000 and --per-context 10 (pick workloads),
# --env NAME=VALUE (extra environment for every function; repeatable).
#
# Steps: .venv (scripts/bootstrap.sh) with awslambdaric (bench/requirements.txt); `npm ci` in
# bench/latency/peer_node (pinned @aws-sdk/client-sqs and client-sns); release builds of the relay
# and, separately (so their dev-dependency features stay out of the relay binary), of the examples
# runtime_api (the Runtime API stand-in), latency_standin, hello_lambda and runtime_floor. Raw numbers in
# target/bench/latency.json, the table also in target/bench/latency.md. Exit status non-zero when
# a check of the relayed calls failed (the table says which).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
say() { printf 'bench-latency: %s\n' "$*" >&2; }
die() { printf 'bench-latency: error: %s\n' "$*" >&2; exit 1; }

for a in "$@"; do
    case "$a" in
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
done

out="$repo/target/bench"
mkdir -p "$out"
start=$SECONDS

say "bootstrap (.venv with pinned boto3, moto)"
bash scripts/bootstrap.sh
req="$repo/bench/requirements.txt"
stamp="$repo/.venv/.bench-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    say "installing bench/requirements.txt (awslambdaric) into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >"$out/pip.log" 2>&1 \
        || { tail -n 15 "$out/pip.log" >&2; die "pip could not install awslambdaric (see bench/requirements.txt)"; }
    printf '%s\n' "$want" >"$stamp"
fi
.venv/bin/python -c 'import awslambdaric' || die "awslambdaric does not import"

command -v node >/dev/null 2>&1 || die "node not found (Node.js 20 or later)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
(( node_major >= 20 )) || die "node $(node --version): Node.js 20 or later is needed"
peer="$repo/bench/latency/peer_node"
lock_sum="$(sha256sum "$peer/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$peer/node_modules/.bench-lock.sha256" 2>/dev/null || true)" != "$lock_sum" ]]; then
    say "npm ci in bench/latency/peer_node"
    (cd "$peer" && npm ci --no-audit --no-fund --loglevel=error >&2)
    printf '%s\n' "$lock_sum" >"$peer/node_modules/.bench-lock.sha256"
fi

say "cargo build --release (relay; examples runtime_api, latency_standin, hello_lambda, runtime_floor)"
cargo build --release --quiet --bin s3-trace-relay
cargo build --release --quiet --example runtime_api --example latency_standin --example hello_lambda --example runtime_floor

say "running bench/latency/latency.py $*"
status=0
.venv/bin/python bench/latency/latency.py \
    --binary "$repo/target/release/s3-trace-relay" \
    --runtime-api "$repo/target/release/examples/runtime_api" \
    --standin "$repo/target/release/examples/latency_standin" \
    --hello "$repo/target/release/examples/hello_lambda" \
    --runtime-floor "$repo/target/release/examples/runtime_floor" \
    --python "$repo/.venv/bin/python" \
    --json "$out/latency.json" \
    "$@" >"$out/latency.md" || status=$?
cat "$out/latency.md"
say "nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg) (see also target/bench/latency.json)"
say "done in $((SECONDS - start)) s"
exit "$status"
