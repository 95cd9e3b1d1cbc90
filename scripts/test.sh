#!/usr/bin/env bash
# The whole test suite: what README.md calls "run every test" and what CI runs (.ci/run).
#
# Installs what the tests need into ./.venv (moto server, cargo-lambda, cfn-lint, SAM CLI: pinned),
# then runs formatting and lint checks, every Rust test (unit, property, handler-level and the
# end-to-end tests that drive the real binary through a Runtime API stand-in against moto), the
# moto launcher's self-check, and the deployment checks. Ends with one line counting all tests.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }

# No incremental caches: CI builds each crate once, and they were a large part of target/.
export CARGO_INCREMENTAL=0

step "bootstrap (.venv with pinned moto, cargo-lambda)"
bash scripts/bootstrap.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features --quiet -- -D warnings

# Plain `cargo test` is hermetic (no network, installs nothing); the e2e feature adds the tests
# against moto, which bootstrap.sh installed above.
step "cargo test --features e2e (unit, property, doc, handler, end-to-end against moto)"
cargo test --all-targets --features e2e --no-fail-fast 2>&1 | tee "$log/cargo.txt"
# With the same features as above, so the library is not compiled a second time.
step "cargo test --doc (runnable examples)"
cargo test --doc --features e2e 2>&1 | tee -a "$log/cargo.txt"

step "moto launcher self-check"
.venv/bin/python -m unittest tests/moto/test_moto_server.py 2>&1 | tee "$log/python.txt"

step "deployment checks (SAM, CDK, cfn-lint, builds)"
bash scripts/check-deploy.sh 2>&1 | tee "$log/deploy.txt"

step "end to end under cargo lambda (the README demo, checked)"
bash scripts/demo.sh --check 2>&1 | tee "$log/demo.txt"

step "fuzzing: each cargo-fuzz target for 30 s from its seed corpus"
bash scripts/fuzz.sh 30

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log/cargo.txt" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log/cargo.txt" | awk '{s += $1} END {print s + 0}')
python_ran=$(grep -Eo '^Ran [0-9]+ test' "$log/python.txt" | awk '{s += $2} END {print s + 0}')
# The plain "N passed, M failed" closing lines of the deploy checks and the demo.
for f in deploy demo; do
    read -r p fl < <(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log/$f.txt" | tail -1 | awk '{print $1, $3}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${fl:-0}))
done
passed=$((passed + python_ran))

printf '\ntests: %d passed, %d failed\n' "$passed" "$failed"
