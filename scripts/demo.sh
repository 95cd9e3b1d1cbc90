#!/usr/bin/env bash
# Runs the relay locally, the way it runs in Lambda, against a local SQS/SNS (moto):
#
#   1. scripts/bootstrap.sh   -> .venv with moto[server], boto3 and cargo-lambda (pinned, PyPI)
#   2. moto (scripts/moto_server.py) on a free port; queue relay-demo-out, topic relay-demo-topic
#      with queue relay-demo-via-sns subscribed (raw delivery)
#   3. `cargo lambda watch` runs the relay with RELAY_TARGETS=<queue url>,<topic arn>
#   4. `cargo lambda invoke` with events/s3-put.json (S3 -> Lambda) and
#      events/sqs-batch-mixed-trace.json (S3 -> SQS -> Lambda: one valid, one invalid, one
#      missing AWSTraceHeader)
#   5. receives what reached both queues and prints, per message, the object key, the
#      AWSTraceHeader system attribute and the traceparent message attribute.
# Everything it started is stopped on exit (also on Ctrl-C).
#
# Usage: scripts/demo.sh [--check]
#   --check   also verify what arrived (every message carries a well-formed AWSTraceHeader and a
#             matching traceparent; the valid incoming header of events/sqs-batch-mixed-trace.json
#             is continued; records with an invalid or missing header get the invocation's),
#             print `demo: N passed, M failed` and exit 1 on any failure.
# Needs: Rust (cargo) and Python 3 with venv. Only PyPI and crates.io are contacted.
# Env: KEEP_TMP=1 keeps the scratch directory (moto and cargo lambda logs).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

check=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs)"
bash scripts/bootstrap.sh || die "scripts/bootstrap.sh failed"
py="$repo/.venv/bin/python"
export PATH="$repo/.venv/bin:$PATH" # cargo-lambda
cargo lambda --version >/dev/null 2>&1 || die "cargo lambda does not run from $repo/.venv/bin"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/relay-demo.XXXXXX")"
moto_pid=""
watch_pid=""
cleanup() {
    local status=$?
    # cargo lambda watch runs in its own process group (setsid): end the group it leads
    # (cargo, the relay process), then moto (its stdin fifo closes with this shell, too).
    if [[ -n "$watch_pid" ]] && kill -0 "$watch_pid" 2>/dev/null; then
        kill -TERM -- "-$watch_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$watch_pid" 2>/dev/null || true
    fi
    if [[ -n "$moto_pid" ]]; then
        kill -TERM "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    exec 3>&- 2>/dev/null || true
    if [[ "${KEEP_TMP:-}" == 1 || $status -ne 0 ]]; then
        say "logs kept in $tmp (moto.err, watch.log)"
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------------- moto
# moto_server.py exits when its stdin reaches EOF: give it a fifo whose write end this
# shell holds (fd 3), so it also goes away if this script is killed without its trap.
mkfifo "$tmp/moto.stdin"
"$py" scripts/moto_server.py --host 127.0.0.1 --port 0 <"$tmp/moto.stdin" >"$tmp/moto.out" 2>"$tmp/moto.err" &
moto_pid=$!
exec 3>"$tmp/moto.stdin"
endpoint=""
for _ in $(seq 1 300); do
    endpoint="$(sed -n 's/^READY \(http[^ ]*\).*/\1/p' "$tmp/moto.out" 2>/dev/null | head -n1)"
    [[ -n "$endpoint" ]] && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$tmp/moto.err" >&2; die "moto exited before READY"; }
    sleep 0.1
done
[[ -n "$endpoint" ]] || { cat "$tmp/moto.err" >&2; die "moto printed no READY line within 30 s"; }
say "moto ready at $endpoint"

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint"
unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE 2>/dev/null || true

# Queue, topic, subscribed queue; prints "<queue url> <topic arn> <via-sns queue url>".
read -r out_url topic_arn via_url < <("$py" - <<'EOF'
import boto3
sqs, sns = boto3.client("sqs"), boto3.client("sns")
out = sqs.create_queue(QueueName="relay-demo-out")["QueueUrl"]
via = sqs.create_queue(QueueName="relay-demo-via-sns")["QueueUrl"]
via_arn = sqs.get_queue_attributes(QueueUrl=via, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
topic = sns.create_topic(Name="relay-demo-topic")["TopicArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=via_arn, Attributes={"RawMessageDelivery": "true"})
print(out, topic, via)
EOF
)
[[ -n "$via_url" ]] || die "creating the demo queues and topic failed"
say "targets: $out_url (SQS), $topic_arn (SNS -> $via_url)"

# ------------------------------------------------------------------------ cargo lambda watch
port="$(free_port)"
# --env-file, not --env-var: --env-var splits its value on commas, and RELAY_TARGETS has one.
cat >"$tmp/relay.env" <<EOF
RELAY_TARGETS=$out_url,$topic_arn
AWS_ENDPOINT_URL=$endpoint
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_SESSION_TOKEN=testing
AWS_LAMBDA_LOG_FORMAT=JSON
AWS_LAMBDA_LOG_LEVEL=INFO
EOF
say "starting cargo lambda watch on 127.0.0.1:$port (the first build can take a few minutes)"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes \
    --env-file "$tmp/relay.env" --bin s3-trace-relay </dev/null >"$tmp/watch.log" 2>&1 &
watch_pid=$!

# The emulator answers at once; the function is compiled and started on the first invoke,
# which waits for it. Wait for the port first.
for _ in $(seq 1 600); do
    "$py" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" \
        2>/dev/null && break
    kill -0 "$watch_pid" 2>/dev/null || { tail -n 40 "$tmp/watch.log" >&2; die "cargo lambda watch exited"; }
    sleep 0.5
done

invoke() { # invoke NAME FILE: prints the function's response, saves it to $tmp/NAME.response
    local name="$1" file="$2" rc=0
    say "cargo lambda invoke --data-file $file"
    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" --output-format json \
        --data-file "$file" s3-trace-relay >"$tmp/$name.response" 2>"$tmp/$name.err" || rc=$?
    if ((rc != 0)); then
        cat "$tmp/$name.err" >&2
        tail -n 40 "$tmp/watch.log" >&2
        if grep -q 'too close to the invocation deadline' "$tmp/watch.log"; then
            say "note: cargo lambda's emulator (1.9.2) sends Lambda-Runtime-Deadline-Ms: 600000, a" \
                "duration, where Lambda sends the deadline as epoch milliseconds; a relay that reads it" \
                "as epoch ms sees a deadline in 1970 and sends nothing"
        fi
        die "cargo lambda invoke $file failed (exit $rc)"
    fi
    printf '  response: %s\n' "$(tr -d '\n' <"$tmp/$name.response")"
}
invoke s3-put events/s3-put.json
invoke sqs-batch events/sqs-batch-mixed-trace.json

# ------------------------------------------------------------------------- what arrived
"$py" - "$out_url" "$via_url" "$check" "$tmp" <<'EOF'
import json, re, sys, time
import boto3

out_url, via_url, check, tmp = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
sqs = boto3.client("sqs")
EXPECTED = 4  # events/s3-put.json: 1 record; events/sqs-batch-mixed-trace.json: 3 records


def drain(url):
    got, deadline = [], time.time() + 15
    while len(got) < EXPECTED and time.time() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                MessageSystemAttributeNames=["AWSTraceHeader"], MessageAttributeNames=["All"])
        for m in r.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def key_of(body):
    try:
        return json.loads(body)["Records"][0]["s3"]["object"]["key"]
    except Exception:
        return "?"


rows = []
for name, url in (("relay-demo-out", out_url), ("relay-demo-via-sns", via_url)):
    for m in drain(url):
        tp = m.get("MessageAttributes", {}).get("traceparent", {}).get("StringValue")
        rows.append({"queue": name, "key": key_of(m["Body"]), "body": " ".join(m["Body"].split()),
                     "aws": m.get("Attributes", {}).get("AWSTraceHeader"), "tp": tp})
rows.sort(key=lambda r: (r["queue"], r["key"]))


def short(s, n):
    s = "-" if s is None else s
    return s if len(s) <= n else s[: n - 1] + "…"


cols = [("queue", 18), ("object key", 14), ("AWSTraceHeader", 76), ("traceparent", 55), ("body", 30)]
print()
print("  ".join(h.ljust(w) for h, w in cols))
print("  ".join("-" * w for _, w in cols))
for r in rows:
    vals = [r["queue"], r["key"], r["aws"], r["tp"], r["body"]]
    print("  ".join(short(v, w).ljust(w) for v, (_, w) in zip(vals, cols)))
print()

if not check:
    sys.exit(0)

# ---------------------------------------------------------------------------- --check
ROOT = re.compile(r"^Root=1-([0-9a-f]{8})-([0-9a-f]{24})(;Parent=([0-9a-f]{16}))?(;Sampled=([01?]))?(;Lineage=[0-9A-Za-z:|,]{1,256})?$")
TP = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")
VALID_IN = "1-5759e988-bd862e3fe1be46a994272793"  # record uploads/a.txt of the SQS batch
results = []


def expect(ok, what):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + what)


for name in ("relay-demo-out", "relay-demo-via-sns"):
    got = [r for r in rows if r["queue"] == name]
    keys = sorted(r["key"] for r in got)
    want = sorted(["images/cat.jpg", "uploads/a.txt", "uploads/b.txt", "uploads/c.txt"])
    expect(keys == want, f"{name}: one message per record {want} (got {keys})")
    for r in got:
        m = ROOT.match(r["aws"] or "")
        expect(m is not None, f"{name} {r['key']}: canonical AWSTraceHeader ({r['aws']!r})")
        if not m:
            continue
        root = f"1-{m.group(1)}-{m.group(2)}"
        t = TP.match(r["tp"] or "")
        expect(t is not None and t.group(1) == m.group(1) + m.group(2),
               f"{name} {r['key']}: traceparent carries the same trace id ({r['tp']!r})")
        if t and m.group(4):
            expect(t.group(2) == m.group(4), f"{name} {r['key']}: traceparent parent = AWSTraceHeader Parent")
        if r["key"] == "uploads/a.txt":
            expect(root == VALID_IN and m.group(6) == "1",
                   f"{name} uploads/a.txt: continues the record's own trace Root={VALID_IN};Sampled=1")
        elif r["key"] in ("uploads/b.txt", "uploads/c.txt"):
            expect(root != VALID_IN, f"{name} {r['key']}: invalid/missing record header -> the invocation's trace ({root})")

# The two fallback records of the SQS batch share the invocation's trace; the S3 event has its own.
def root_of(header):
    m = ROOT.match(header or "")
    return m.group(1, 2) if m else None


by_key = {(r["queue"], r["key"]): root_of(r["aws"]) for r in rows}
for name in ("relay-demo-out", "relay-demo-via-sns"):
    b, c, p = by_key.get((name, "uploads/b.txt")), by_key.get((name, "uploads/c.txt")), by_key.get((name, "images/cat.jpg"))
    expect(b is not None and b == c and None not in b, f"{name}: uploads/b.txt and uploads/c.txt share the SQS invocation's trace")
    expect(p is not None and p != b, f"{name}: images/cat.jpg has the S3 invocation's own trace")

for name in ("s3-put", "sqs-batch"):
    raw = open(f"{tmp}/{name}.response").read().strip()
    try:
        resp = json.loads(raw) if raw else None
    except ValueError:
        resp = raw
    if name == "sqs-batch":
        expect(isinstance(resp, dict) and resp.get("batchItemFailures") == [],
               f"{name}: response reports no failed records ({' '.join(raw.split())[:160]})")
    else:
        expect(not (isinstance(resp, dict) and resp.get("errorType")),
               f"{name}: invocation succeeded ({' '.join(raw.split())[:160]})")

passed, failed = results.count(True), results.count(False)
print(f"demo: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF
