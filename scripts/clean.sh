#!/usr/bin/env bash
# Removes what the project's scripts and builds leave behind, and says how much it frees.
#
# Usage: scripts/clean.sh [--dry-run] [--outside]
#   (no option)  inside the checkout: target/ (cargo), .venv/ (moto, boto3, cargo-lambda, and
#                .venv/deploy: cfn-lint, SAM CLI), cdk/node_modules/ and cdk/cdk.out/ (npm ci,
#                cdk synth), bench/latency/peer_node/node_modules/ (scripts/bench-latency.sh),
#                fuzz/target/, fuzz/artifacts/ and fuzz/coverage/ (cargo-fuzz),
#                .aws-sam/ (sam build). All of it is git-ignored and made again by the scripts.
#   --outside    also what the scripts added outside the checkout: cargo-fuzz in ~/.cargo/bin
#                (scripts/fuzz.sh), the Rust std for aarch64-unknown-linux-gnu (rustup target,
#                scripts/check-deploy.sh), zig's caches ~/.cache/zig and ~/.cache/cargo-zigbuild
#                (cargo lambda cross-linking) and the bootstrap lock files in ${TMPDIR:-/tmp}.
#                Other projects may use these too: only with this option.
#   --dry-run    list what would be removed, with sizes, and remove nothing.
#
# Never touched: your files (relay.env included), the Rust toolchain, ~/.cargo/registry (crates
# shared by every Rust project; `cargo cache` or deleting it by hand frees it), npm's and pip's
# download caches, and python3-venv if scripts/bootstrap.sh installed it with apt-get.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

dry=0
outside=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry=1 ;;
        --outside) outside=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "clean: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

freed=0
# remove PATH...: each existing path, with its size.
remove() {
    local path kb
    for path in "$@"; do
        [[ -e "$path" ]] || continue
        kb="$(du -sk "$path" 2>/dev/null | cut -f1)"
        freed=$((freed + ${kb:-0}))
        printf 'clean: %-8s %s\n' "$(human "${kb:-0}")" "$path"
        ((dry)) || rm -rf -- "$path"
    done
}
human() { awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.1f GB", k / 1048576; else printf "%.0f MB", k / 1024 }'; }

# Inside the checkout: relative paths only, so nothing outside it is touched by mistake.
remove target .venv cdk/node_modules cdk/cdk.out bench/latency/peer_node/node_modules fuzz/target fuzz/artifacts fuzz/coverage .aws-sam

if ((outside)); then
    cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    if [[ -x "$cargo_home/bin/cargo-fuzz" ]]; then
        kb="$(du -sk "$cargo_home/bin/cargo-fuzz" | cut -f1)"
        freed=$((freed + kb))
        printf 'clean: %-8s %s (cargo uninstall cargo-fuzz)\n' "$(human "$kb")" "$cargo_home/bin/cargo-fuzz"
        ((dry)) || cargo uninstall cargo-fuzz >/dev/null 2>&1 || rm -f -- "$cargo_home/bin/cargo-fuzz"
    fi
    if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
        std="$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu"
        kb="$(du -sk "$std" 2>/dev/null | cut -f1)"
        freed=$((freed + ${kb:-0}))
        printf 'clean: %-8s %s (rustup target remove aarch64-unknown-linux-gnu)\n' "$(human "${kb:-0}")" "$std"
        ((dry)) || rustup target remove aarch64-unknown-linux-gnu >/dev/null 2>&1
    fi
    remove "$HOME/.cache/zig" "$HOME/.cache/cargo-zigbuild"
    shopt -s nullglob
    locks=("${TMPDIR:-/tmp}"/s3-trace-relay-bootstrap-*.lock)
    shopt -u nullglob
    if ((${#locks[@]})); then
        remove "${locks[@]}"
    fi
fi

if ((dry)); then
    echo "clean: would free $(human "$freed") (dry run: nothing removed)"
else
    echo "clean: freed $(human "$freed")"
fi
