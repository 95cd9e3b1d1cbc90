#!/usr/bin/env bash
# Checks that the relay deploys the way users deploy it: the SAM template (cfn-lint,
# `sam validate --lint`, offline policy checks, deliberately broken copies that must be
# rejected, `sam build` producing a `bootstrap`) and the CDK app (npm ci, type check, tests
# with aws-cdk-lib/assertions, every s3.EventType of the installed aws-cdk-lib through the
# construct and the relay's own config parser (examples/route_check, a debug build) and through
# the template's FilterEvents AllowedPattern, `cdk synth` bundling with cargo lambda, cfn-lint on
# the synthesized template). No AWS account, no Docker; the network is used only for the package
# registries (PyPI, npm, crates.io).
#
# Usage: scripts/check-deploy.sh [--no-build]
#   --no-build   skip `sam build` and `cdk synth` (the two release builds of the relay)
#
# Env:
#   RELAY_ARCH=arm64|x86_64   architecture to build (default: arm64 when the Rust std for
#                             aarch64-unknown-linux-gnu is installed, else x86_64 — see below)
#   KEEP_TMP=1                keep the scratch directory (build output, logs)
#
# Prints one `PASS <check>` / `FAIL <check>` (or `SKIP`) line per check and ends with
# `check-deploy: N passed, M failed`; exits 1 if any check failed.
#
# Architecture: template.yaml and the CDK construct default to arm64. cargo lambda cross-links
# with zig (from the ziglang wheel installed with cargo-lambda) but still needs the Rust
# standard library for aarch64-unknown-linux-gnu (`rustup target add aarch64-unknown-linux-gnu`).
# Without it this script builds x86_64 instead: `sam build` from a copy of the template with
# `Architectures: [x86_64]`, `cdk synth -c relayArchitecture=x86_64`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-deploy: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

export SAM_CLI_TELEMETRY=0
export CDK_DISABLE_VERSION_CHECK=1
export CDK_DISABLE_CLI_TELEMETRY=true
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

tmp="$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")"
cleanup() {
    if [[ "${KEEP_TMP:-}" == 1 ]]; then echo "check-deploy: scratch kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
n=0

pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
skip() { skipped=$((skipped + 1)); printf 'SKIP %s\n' "$*"; }

# run LOGNAME CMD...: runs CMD with output to $tmp/LOGNAME.log; returns its exit status.
run() {
    local log="$tmp/$1.log"
    shift
    "$@" >"$log" 2>&1
}
# show LOGNAME: the last lines of a log, indented, after a FAIL line.
show() { tail -n "${2:-25}" "$tmp/$1.log" | sed 's/^/    | /'; }

# check NAME CMD...: PASS when CMD exits 0, else FAIL with the end of its output.
check() {
    local name="$1"
    shift
    n=$((n + 1))
    local log="c$n"
    if run "$log" "$@"; then
        pass "$name"
    else
        fail "$name (exit $?)"
        show "$log"
    fi
}

# ------------------------------------------------------------------------------- tools
# .venv (moto, boto3, cargo-lambda) comes from scripts/bootstrap.sh; cfn-lint and SAM CLI
# go to .venv/deploy (see scripts/requirements-deploy.txt for why not .venv itself).
if ! bash scripts/bootstrap.sh; then
    fail "scripts/bootstrap.sh"
    echo "check-deploy: $passed passed, $failed failed"
    exit 1
fi
deploy_venv="$repo/.venv/deploy"
req="$repo/scripts/requirements-deploy.txt"
stamp="$deploy_venv/.requirements-deploy.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$deploy_venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "check-deploy: installing cfn-lint + aws-sam-cli into $deploy_venv" >&2
    rm -rf "$deploy_venv"
    if run deploy-venv python3 -m venv "$deploy_venv" &&
        run deploy-pip "$deploy_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input -r "$req"; then
        printf '%s\n' "$want" >"$stamp"
    else
        fail "install pinned deploy tools (scripts/requirements-deploy.txt)"
        show deploy-venv 5
        show deploy-pip 30
        echo "check-deploy: $passed passed, $failed failed"
        exit 1
    fi
fi
cfn_lint="$deploy_venv/bin/cfn-lint"
sam="$deploy_venv/bin/sam"
dpy="$deploy_venv/bin/python"
# cargo-lambda (for sam build / cdk synth) from .venv/bin, and .venv/bin FIRST: cargo lambda
# finds zig as `python3 -m ziglang`, and only .venv's python has the ziglang wheel (with the
# deploy venv first it fails: "Zig is not installed in your system"). cfn-lint and sam are
# called by absolute path: .venv/bin also has a cfn-lint (pulled in by moto) but without
# aws-sam-translator.
export PATH="$repo/.venv/bin:$deploy_venv/bin:$PATH"
echo "check-deploy: $("$cfn_lint" --version), $("$sam" --version), $(cargo lambda --version 2>/dev/null || echo 'cargo lambda MISSING'), node $(node --version), npm $(npm --version)"

# Which architecture can be built here: Lambda's default is arm64, so try to add its Rust std
# (cargo lambda's zig does the linking); fall back to x86_64 where rustup cannot fetch it.
if [[ -z "${RELAY_ARCH:-}" ]] && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    timeout 300 rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
fi
if [[ -n "${RELAY_ARCH:-}" ]]; then
    arch="$RELAY_ARCH"
elif rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    arch=arm64
else
    arch=x86_64
    echo "check-deploy: no Rust std for aarch64-unknown-linux-gnu (rustup target list --installed):" \
        "building x86_64 here; deployments default to arm64" >&2
fi
case "$arch" in
    arm64) file_arch="ARM aarch64" ;;
    x86_64) file_arch="x86-64" ;;
    *) echo "check-deploy: RELAY_ARCH must be arm64 or x86_64, got $arch" >&2; exit 2 ;;
esac
echo "check-deploy: building for $arch"

# -------------------------------------------------------------------------- SAM template
check "cfn-lint template.yaml" "$cfn_lint" -- template.yaml
check "sam validate --lint" "$sam" validate --lint --template-file template.yaml --region "$AWS_REGION"
check "template policy/wiring checks (tests/deploy/check_template.py)" "$dpy" tests/deploy/check_template.py template.yaml

# Broken copies: each must be rejected, else the check above proves nothing.
if ! run broken "$dpy" tests/deploy/make_broken_templates.py template.yaml "$tmp/broken"; then
    fail "generate broken templates"
    show broken
else
    while IFS=$'\t' read -r kind path what; do
        name="$(basename "$path" .yaml)"
        if [[ "$kind" == linters ]]; then
            lint_rc=0 sam_rc=0
            run "$name-lint" "$cfn_lint" -- "$path" || lint_rc=$?
            run "$name-sam" "$sam" validate --lint --template-file "$path" --region "$AWS_REGION" || sam_rc=$?
            if ((lint_rc != 0 && sam_rc != 0)); then
                pass "broken template rejected by cfn-lint (exit $lint_rc) and sam validate --lint (exit $sam_rc): $what"
            else
                fail "broken template NOT rejected (cfn-lint exit $lint_rc, sam validate --lint exit $sam_rc): $what"
            fi
        else
            rc=0
            run "$name-check" "$dpy" tests/deploy/check_template.py "$path" || rc=$?
            if ((rc != 0)); then
                pass "broken template rejected by check_template.py: $what ($(head -n1 "$tmp/$name-check.log"))"
            else
                fail "broken template NOT rejected by check_template.py: $what"
            fi
        fi
    done <"$tmp/broken.log"
fi

# bootstrap_info PATH: "<file output>, <bytes> bytes"
bootstrap_info() { echo "$(file -b "$1" | cut -d, -f1-2), $(stat -c %s "$1") bytes"; }

if ((build)); then
    sam_template=template.yaml
    if [[ "$arch" != arm64 ]]; then
        # CodeUri is relative to the template: the copy points back at the repository.
        sam_template="$tmp/template-$arch.yaml"
        sed -e "s/Architectures: \[arm64\]/Architectures: [$arch]/" -e "s#CodeUri: \.\$#CodeUri: $repo#" \
            template.yaml >"$sam_template"
    fi
    if run sam-build "$sam" build --template-file "$sam_template" --build-dir "$tmp/sam-build" \
        --no-cached --region "$AWS_REGION"; then
        bin="$tmp/sam-build/RelayFunction/bootstrap"
        if [[ -f "$bin" ]] && file -b "$bin" | grep -q "$file_arch"; then
            pass "sam build ($arch): RelayFunction/bootstrap: $(bootstrap_info "$bin")"
        else
            fail "sam build ($arch): no $file_arch bootstrap ($(ls "$tmp/sam-build/RelayFunction" 2>&1 | tr '\n' ' '))"
        fi
    else
        fail "sam build ($arch)"
        show sam-build 30
    fi
else
    skip "sam build (--no-build)"
fi

# ---------------------------------------------------------------------------------- CDK
cdk_ok=1
if ! run npm-ci npm ci --prefix cdk --no-audit --no-fund; then
    fail "npm ci (cdk/)"
    show npm-ci
    cdk_ok=0
else
    pass "npm ci (cdk/)"
fi
# cdk_test LOGNAME LABEL FILE: one node test file, counted as one check with its pass/fail counts.
cdk_test() {
    local log="$1" label="$2" file="$3"
    if (cd cdk && run "$log" node --import tsx --test "$file"); then
        pass "$label: $(grep -E '^# (pass|fail) ' "$tmp/$log.log" | tr '\n' ' ' | sed 's/# //g; s/ $//')"
    else
        fail "$label"
        grep -E '^\s*not ok|^# (pass|fail)' "$tmp/$log.log" | sed 's/^/    | /' || show "$log"
    fi
}
if ((cdk_ok)); then
    check "cdk type check (tsc --noEmit)" npm --prefix cdk run --silent build
    cdk_test cdk-test "cdk tests" test/s3-trace-relay.test.ts
    # Every s3.EventType of the installed aws-cdk-lib through the construct, synth and the relay's
    # own config parser (examples/route_check.rs; the test builds it too, a no-op after this).
    if run route-check cargo build --quiet --example route_check; then
        cdk_test cdk-event-types "cdk s3.EventType tests (construct, synth, relay parser via examples/route_check)" \
            test/event-types.test.ts
    else
        fail "cargo build --example route_check (needed by cdk/test/event-types.test.ts)"
        show route-check
    fi
    # The SAM template's FilterEvents AllowedPattern against the same list.
    if (cd cdk && node -e "process.stdout.write(JSON.stringify(Object.values(require('aws-cdk-lib/aws-s3').EventType)))") \
        >"$tmp/s3-event-types.json" 2>"$tmp/s3-event-types.log"; then
        n=$((n + 1))
        if run "c$n" "$dpy" tests/deploy/check_template.py --event-types "$tmp/s3-event-types.json" template.yaml; then
            pass "template FilterEvents AllowedPattern vs aws-cdk-lib s3.EventType: $(tail -n1 "$tmp/c$n.log")"
        else
            fail "template FilterEvents AllowedPattern vs aws-cdk-lib s3.EventType"
            show "c$n"
        fi
    else
        fail "list aws-cdk-lib s3.EventType (node, in cdk/)"
        show s3-event-types
    fi
    if ((build)); then
        if (cd cdk && run cdk-synth npx --no-install cdk synth --quiet --no-notices \
            -c "relayArchitecture=$arch" -o "$tmp/cdk.out"); then
            asset="$(find "$tmp/cdk.out" -path '*/asset.*/bootstrap' -type f | head -n1)"
            if [[ -n "$asset" ]] && file -b "$asset" | grep -q "$file_arch"; then
                pass "cdk synth -c relayArchitecture=$arch (bundled with cargo lambda): bootstrap: $(bootstrap_info "$asset")"
            else
                fail "cdk synth: no $file_arch bootstrap in the cloud assembly"
            fi
            # W3005 (DependsOn already implied by GetAtt) comes from aws-cdk-lib's own L2
            # constructs (Function -> ServiceRole, BucketNotificationsHandler), not from ours.
            check "cfn-lint on the synthesized template (ignoring W3005)" \
                "$cfn_lint" --ignore-checks W3005 -- "$tmp/cdk.out/S3TraceRelayExample.template.json"
        else
            fail "cdk synth -c relayArchitecture=$arch"
            show cdk-synth 30
        fi
    else
        skip "cdk synth (--no-build)"
        skip "cfn-lint on the synthesized template (--no-build)"
    fi
fi

if ((skipped)); then
    echo "check-deploy: $passed passed, $failed failed, $skipped skipped"
else
    echo "check-deploy: $passed passed, $failed failed"
fi
((failed == 0))
