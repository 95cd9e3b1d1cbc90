#!/usr/bin/env bash
# Create <repo>/.venv with the pinned local AWS stand-ins (moto server mode, boto3,
# cargo-lambda) listed in scripts/requirements.txt.
#
# Idempotent: a stamp file inside the venv records the sha256 of requirements.txt;
# when it matches (and the venv's python still runs) this prints nothing and exits 0.
# Only errors are printed on a repeat run; the first run prints one progress line
# per step on stderr.
#
# Env: PYTHON (default python3) picks the interpreter used to create the venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
req="$repo/scripts/requirements.txt"
stamp="$venv/.s3-trace-relay-requirements.sha256"
python="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

[[ -f "$req" ]] || die "missing $req"
command -v "$python" >/dev/null 2>&1 || die "$python not found (install python3 >= 3.9)"

want="$(sha256sum "$req" | cut -d' ' -f1)"

venv_ok() { [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1; }
up_to_date() { venv_ok && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]; }

# Fast path: nothing to do, print nothing.
if up_to_date; then
    exit 0
fi

# Serialise concurrent bootstraps (e.g. two test runs starting at once).
if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/s3-trace-relay-bootstrap-$(printf '%s' "$repo" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
    if up_to_date; then
        exit 0
    fi
fi

make_venv() {
    rm -rf "$venv"
    "$python" -m venv "$venv" >/dev/null 2>&1
}

if ! venv_ok; then
    say "creating $venv"
    if ! make_venv; then
        # Debian/Ubuntu ship venv's ensurepip in a separate package.
        if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
            say "python3 -m venv failed; installing python3-venv with apt-get"
            pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            export DEBIAN_FRONTEND=noninteractive
            if ! apt-get install -y -qq python3-venv "python${pyver}-venv" >/dev/null 2>&1; then
                apt-get update -qq >/dev/null 2>&1 || true
                apt-get install -y -qq python3-venv >/dev/null 2>&1 \
                    || apt-get install -y -qq "python${pyver}-venv" >/dev/null 2>&1 \
                    || die "apt-get could not install python3-venv"
            fi
            make_venv || die "$python -m venv $venv failed even after installing python3-venv"
        else
            die "$python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
        fi
    fi
fi

say "installing pinned packages from scripts/requirements.txt"
rm -f "$stamp"
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$req" >"$pip_log" 2>&1; then
    cat "$pip_log" >&2
    die "pip install failed"
fi

# Sanity-check what the launcher and CI rely on before writing the stamp.
"$venv/bin/python" - <<'EOF' || die "installed set does not match the pins"
import importlib.metadata as md
import sys
want = {"moto": "5.2.5", "cargo-lambda": "1.9.2"}
bad = {k: md.version(k) for k in want if md.version(k) != want[k]}
if bad:
    sys.exit(f"unexpected versions: {bad}")
import boto3, moto.server  # noqa: F401  (server extra importable)
import flask, flask_cors  # noqa: F401
EOF
"$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1 \
    || die "$venv/bin/cargo-lambda does not run"

printf '%s\n' "$want" >"$stamp"
say "ready: $venv"
