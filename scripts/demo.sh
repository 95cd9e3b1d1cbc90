#!/usr/bin/env bash
# Runs the relay locally, the way it runs in Lambda, against a local SQS/SNS (moto), and shows
# what happened to each record's trace context:
#
#   1. scripts/bootstrap.sh   -> .venv with moto[server], boto3 and cargo-lambda (pinned, PyPI)
#   2. moto (scripts/moto_server.py) on a free port; queue relay-demo-out, topic relay-demo-topic
#      with queue relay-demo-via-sns subscribed (raw delivery)
#   3. an X-Ray daemon stand-in (a UDP listener) that collects the segments the relay records
#   4. `cargo lambda watch` runs the relay with RELAY_TARGETS=<queue url>,<topic arn>; it builds the
#      relay on the first invoke (the first build takes minutes, later ones seconds)
#   5. `cargo lambda invoke` with events/s3-put.json (S3 -> Lambda: 1 record) and
#      events/sqs-batch-mixed-trace.json (S3 -> SQS -> Lambda: uploads/a.txt with a valid
#      AWSTraceHeader, uploads/b.txt with an invalid one, uploads/c.txt without one)
#   6. receives what reached both queues and prints one row per message: the trace it came in
#      with (its record's own header, or the invocation's), the AWSTraceHeader it left with, and a
#      verdict (Root, Sampled and Lineage kept; Parent the relay's X-Ray subsegment)
# Everything it started is stopped on exit (also on Ctrl-C).
#
# Usage: scripts/demo.sh [--check]
#   --check   also verify what arrived (every message carries a well-formed AWSTraceHeader and a
#             matching traceparent; the valid incoming header of events/sqs-batch-mixed-trace.json
#             is continued; records with an invalid or missing header get the invocation's; Root,
#             Sampled and Lineage are the incoming ones and Parent is a subsegment the relay
#             recorded), print `demo: N passed, M failed` and exit 1 on any failure.
# Needs: Rust (cargo) and Python 3 with venv. Only PyPI and crates.io are contacted.
# Env: KEEP_TMP=1 keeps the scratch directory (moto and cargo lambda logs, X-Ray documents).
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
step() { printf 'demo: [%s/6] %s\n' "$1" "${*:2}" >&2; }
more() { printf 'demo:       %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs)"
step 1 "local tools in .venv (scripts/bootstrap.sh: moto, boto3, cargo-lambda; the first run downloads them)"
bash scripts/bootstrap.sh || die "scripts/bootstrap.sh failed"
py="$repo/.venv/bin/python"
export PATH="$repo/.venv/bin:$PATH" # cargo-lambda
cargo lambda --version >/dev/null 2>&1 || die "cargo lambda does not run from $repo/.venv/bin"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/relay-demo.XXXXXX")"
moto_pid=""
xray_pid=""
watch_pid=""
invoke_pid=""
cleanup() {
    local status=$?
    [[ -n "$invoke_pid" ]] && kill -TERM "$invoke_pid" 2>/dev/null
    # cargo lambda watch runs in its own process group (setsid): end the group it leads
    # (cargo, the relay process), then moto (its stdin fifo closes with this shell, too).
    if [[ -n "$watch_pid" ]] && kill -0 "$watch_pid" 2>/dev/null; then
        kill -TERM -- "-$watch_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$watch_pid" 2>/dev/null || true
    fi
    for pid in "$moto_pid" "$xray_pid"; do
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    exec 3>&- || true # close the fifo (a redirection on exec would apply to the shell for good)
    if [[ "${KEEP_TMP:-}" == 1 || $status -ne 0 ]]; then
        say "logs kept in $tmp (moto.err, watch.log, xray.jsonl)"
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
step 2 "local SQS/SNS (moto, scripts/moto_server.py) at $endpoint"
more "queue relay-demo-out, and topic relay-demo-topic -> queue relay-demo-via-sns (raw delivery)"

# ------------------------------------------------------------------- X-Ray daemon stand-in
# Lambda with active tracing runs an X-Ray daemon and sets AWS_XRAY_DAEMON_ADDRESS; the relay then
# records each SQS/SNS call of a sampled trace as a subsegment and gives the messages its id as
# Parent. This listener writes each document it receives, one per line, to xray.jsonl; it exits
# with this shell (its parent).
"$py" -u - "$tmp/xray.jsonl" >"$tmp/xray.port" 2>"$tmp/xray.err" <<'EOF' &
import os, socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(1)
print(sock.getsockname()[1], flush=True)
parent = os.getppid()
with open(sys.argv[1], "a") as out:
    while os.getppid() == parent:
        try:
            datagram = sock.recv(65536)
        except socket.timeout:
            continue
        _, _, document = datagram.decode("utf-8", "replace").partition("\n")
        out.write(" ".join(document.split()) + "\n")
        out.flush()
EOF
xray_pid=$!
xray_port=""
for _ in $(seq 1 100); do
    xray_port="$(head -n1 "$tmp/xray.port" 2>/dev/null || true)"
    [[ -n "$xray_port" ]] && break
    kill -0 "$xray_pid" 2>/dev/null || { cat "$tmp/xray.err" >&2; die "the X-Ray daemon stand-in exited"; }
    sleep 0.1
done
[[ -n "$xray_port" ]] || die "the X-Ray daemon stand-in did not start"
step 3 "X-Ray daemon stand-in on udp://127.0.0.1:$xray_port (collects the relay's segments)"

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
AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:$xray_port
EOF
step 4 "cargo lambda watch on 127.0.0.1:$port (Lambda's Runtime API, emulated), RELAY_TARGETS:"
more "$out_url (SQS)"
more "$topic_arn (SNS)"
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

# build_progress SECONDS FROM: one line on what cargo lambda watch is doing while an invoke waits
# (from line FROM of its log on).
build_progress() {
    local log crates last elapsed
    log="$(tail -n "+$(($2 + 1))" "$tmp/watch.log")"
    crates="$(grep -c '^ *Compiling ' <<<"$log" || true)"
    last="$(sed -n 's/^ *Compiling \([^ ]*\).*/\1/p' <<<"$log" | tail -n1)"
    elapsed="$(printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)))"
    if grep -q '^ *Finished ' <<<"$log"; then
        more "$elapsed: built (crates compiled: $crates); the relay is starting"
    elif ((crates > 0)); then
        more "$elapsed: building, crates compiled so far: $crates (now $last)"
    elif grep -q 'Blocking waiting for file lock' <<<"$log"; then
        more "$elapsed: waiting for another cargo command to finish with target/"
    else
        more "$elapsed: waiting for cargo lambda watch (cargo is checking what to build)"
    fi
}

# response_line NAME: the function's response, summed up on one line.
response_line() {
    "$py" - "$tmp/$1.response" <<'EOF'
import json, sys
raw = open(sys.argv[1]).read()
try:
    r = json.loads(raw)
except ValueError:
    r = None
if isinstance(r, dict) and "batchItemFailures" in r:
    n = len(r["batchItemFailures"])
    print('response {"batchItemFailures":[%s]}: %s' % ("…" if n else "", f"{n} message(s) to retry" if n else "no message to retry"))
elif isinstance(r, dict) and "received" in r:
    order = ["received", "published", "messagesFailed", "reportedFailures", "filteredOut", "testEvents",
             "invalidTraceHeaders", "fallbacks", "publishCalls", "retries"]
    shown = [f"{k} {r[k]}" for k in sorted(r, key=lambda k: order.index(k) if k in order else 99) if r[k]]
    print("response (counts): " + ", ".join(shown) + "; every other count 0")
else:
    print("response: " + " ".join(raw.split())[:100])
EOF
}

invoke() { # invoke NAME FILE: invokes the function, printing progress while it waits
    local name="$1" file="$2" rc=0 start=$SECONDS next=15 from
    from="$(wc -l <"$tmp/watch.log")"
    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" --output-format json \
        --data-file "$file" s3-trace-relay >"$tmp/$name.response" 2>"$tmp/$name.err" &
    invoke_pid=$!
    while kill -0 "$invoke_pid" 2>/dev/null; do
        sleep 1
        if grep -qE '^error(\[E[0-9]+\])?:|ERROR command exited' "$tmp/watch.log"; then
            grep -E -A 12 '^error(\[E[0-9]+\])?:' "$tmp/watch.log" | head -n 40 >&2 || tail -n 20 "$tmp/watch.log" >&2
            die "cargo lambda watch could not build or run the relay (log: $tmp/watch.log)"
        fi
        if ((SECONDS - start >= next)); then
            build_progress $((SECONDS - start)) "$from"
            next=$((next + 15))
        fi
    done
    wait "$invoke_pid" || rc=$?
    invoke_pid=""
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
    more "$(response_line "$name")"
}
step 5 "cargo lambda invoke --data-file events/s3-put.json (S3 -> relay: images/cat.jpg)"
more "cargo lambda watch builds the relay (debug) before the first invoke: 3-5 minutes on 2 cores the first"
more "time; later runs reuse target/ and take seconds"
invoke s3-put events/s3-put.json
step 5 "cargo lambda invoke --data-file events/sqs-batch-mixed-trace.json (S3 -> SQS -> relay: uploads/a-c.txt)"
invoke sqs-batch events/sqs-batch-mixed-trace.json
step 6 "reading what reached relay-demo-out and relay-demo-via-sns"

# ------------------------------------------------------------------------- what arrived
"$py" - "$out_url" "$via_url" "$check" "$tmp" <<'EOF'
import json, re, sys, time
import boto3

out_url, via_url, check, tmp = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
sqs = boto3.client("sqs")
EXPECTED = 4  # events/s3-put.json: 1 record; events/sqs-batch-mixed-trace.json: 3 records
WIDTH = 120   # every line printed below fits


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
        rows.append({"queue": name, "key": key_of(m["Body"]), "aws": m.get("Attributes", {}).get("AWSTraceHeader"), "tp": tp})
rows.sort(key=lambda r: (r["queue"], r["key"]))


# ------------------------------------------------------------------ what came in, and why
def fields(header):
    """A trace header's fields, read leniently (for display; the relay's own rules decide)."""
    out = {}
    for part in (header or "").split(";"):
        k, eq, v = part.partition("=")
        if eq and k.strip().lower() in ("root", "parent", "sampled", "lineage"):
            out.setdefault(k.strip().lower(), v.strip())
    for k in ("root", "parent"):
        if k in out:
            out[k] = out[k].lower()
    return out


# The relay's log (JSON lines in watch.log): the invocation's trace header as Lambda handed it over
# (Lambda-Runtime-Trace-Id, made up by cargo lambda's emulator), and the fallbacks it took.
invocations, fallbacks = [], {}
for line in open(f"{tmp}/watch.log", errors="replace"):
    if not line.startswith("{"):
        continue
    try:
        doc = json.loads(line)
    except ValueError:
        continue
    f, span = doc.get("fields", {}), doc.get("span", {})
    if f.get("message") == "invocation done":
        invocations.append(span.get("xrayTraceId"))
    elif f.get("message") == "trace context fallback" and f.get("message_id"):
        fallbacks[f["message_id"]] = f.get("reason", "")
invocation_of = {"s3-put": invocations[0] if invocations else None,
                 "sqs-batch": invocations[1] if len(invocations) > 1 else None}

# Each record: the invocation it came in, and its SQS message's own AWSTraceHeader, if any.
came = {"images/cat.jpg": {"via": "s3-put", "own": None, "message_id": None}}
for m in json.load(open("events/sqs-batch-mixed-trace.json"))["Records"]:
    came[key_of(m["body"])] = {"via": "sqs-batch", "own": m.get("attributes", {}).get("AWSTraceHeader"),
                               "message_id": m["messageId"]}
for key, c in came.items():
    if c["via"] == "s3-put":
        c["source"], c["why"] = "invocation", None
        c["in"] = invocation_of["s3-put"]
    elif c["message_id"] in fallbacks:
        c["source"], c["why"] = "invocation", fallbacks[c["message_id"]]
        c["in"] = invocation_of["sqs-batch"]
    else:
        c["source"], c["why"] = "record header", None
        c["in"] = c["own"]

# The X-Ray documents the relay sent: subsegment id -> (trace id, operation).
subsegments = {}
try:
    for line in open(f"{tmp}/xray.jsonl"):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("type") == "subsegment":
            subsegments[doc.get("id")] = (doc.get("trace_id"), (doc.get("aws") or {}).get("operation"))
except OSError:
    pass

labels = {}


def label(root):
    if root not in labels:
        labels[root] = f"T{len(labels) + 1}"
    return labels[root]


for key in ("uploads/a.txt", "uploads/b.txt", "images/cat.jpg"):
    label(fields(came[key]["in"]).get("root"))


def brief(header):
    f = fields(header)
    if not f.get("root"):
        return "none"
    text = label(f["root"])
    if f.get("parent"):
        text += f" P={f['parent'][:8]}…"
    if f.get("sampled"):
        text += f" S={f['sampled']}"
    if f.get("lineage"):
        text += " L=…"
    return text


def verdict(r):
    """What happened to the context: Root, Sampled and Lineage as they came in; whose Parent."""
    i, o = fields(came[r["key"]]["in"]), fields(r["aws"])
    if not o.get("root"):
        return "WRONG: no trace header", False
    kept = [k for k in ("root", "sampled", "lineage") if i.get(k) is not None and o.get(k) == i.get(k)]
    changed = [k for k in ("root", "sampled", "lineage") if o.get(k) != i.get(k)]
    sub = subsegments.get(o.get("parent"))
    relays = sub is not None and sub[0] == o["root"]
    if changed:
        return "WRONG: " + ", ".join(k.capitalize() for k in changed) + " changed", False
    if not relays:
        whose = "upstream's" if o.get("parent") and o.get("parent") == i.get("parent") else "unknown"
        return f"WRONG: Parent {whose}, not a subsegment the relay recorded", False
    return "ok: " + ", ".join(k.capitalize() for k in kept) + " kept; Parent: relay's", True


def fit(line):
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


print()
print("Traces seen, by X-Ray Root:")
origin = {
    label(fields(came["uploads/a.txt"]["in"]).get("root")): "upstream: uploads/a.txt's own AWSTraceHeader (SQS message)",
    label(fields(invocation_of["sqs-batch"]).get("root")): "invocation of events/sqs-batch-mixed-trace.json",
    label(fields(invocation_of["s3-put"]).get("root")): "invocation of events/s3-put.json",
}
for root, name in labels.items():
    print(fit(f"  {name}  {root or '(none)':35}  {origin.get(name, '')}"))
print("  (cargo lambda's emulator makes up each invocation's trace header, as Lambda does: Sampled=1)")
print()
print("One row per message (P = Parent, its first 8 hex; S = Sampled; SNS: via relay-demo-topic):")
notes, table = {}, []
for r in rows:
    c = came.get(r["key"], {"source": "?", "why": None, "in": None})
    source = c["source"]
    if c["why"]:
        notes.setdefault(c["why"], "¹²³*"[min(len(notes), 3)])
        source = f"invocation {notes[c['why']]}"
    table.append(["SQS" if r["queue"] == "relay-demo-out" else "SNS", r["key"], source, brief(c["in"]),
                  brief(r["aws"]), verdict(r)[0]])
head = ["via", "object key", "came in with", "", "left with", "verdict"]
widths = [max([len(h)] + [len(t[i]) for t in table]) for i, h in enumerate(head)]
widths[2] = max(widths[2], len("came in with") - widths[3] - 2)
print(fit("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()))
print(fit("  ".join("-" * w for w in widths)))
for t in table:
    print(fit("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip()))
for why, mark in notes.items():
    print(fit(f"{mark} fell back: {why}"))
a = next((r for r in rows if r["key"] == "uploads/a.txt"), None)
if a:
    print("uploads/a.txt's header as it came in, and as it left (parsed, then written canonically):")
    print(fit(f"  in:  {came['uploads/a.txt']['own']!r}"))
    print(fit(f"  out: {a['aws']!r}"))
print("Each message also carries a traceparent attribute: the same context in W3C form.")
print()
print("demo: shown: own valid trace kept, else the invocation's; Parent the relay's. More: --check, README \"Run it locally\"")

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
        v, ok = verdict(r)
        expect(ok, f"{name} {r['key']}: Root, Sampled, Lineage as they came in; Parent a subsegment the relay recorded ({v})")
        sub = subsegments.get(m.group(4))
        op = "SendMessageBatch" if name == "relay-demo-out" else "PublishBatch"
        expect(sub is not None and sub[1] == op, f"{name} {r['key']}: Parent is the relay's {op} subsegment ({sub})")

# The two fallback records of the SQS batch share the invocation's trace; the S3 event has its own.
def root_of(header):
    m = ROOT.match(header or "")
    return m.group(1, 2) if m else None


by_key = {(r["queue"], r["key"]): root_of(r["aws"]) for r in rows}
inv = root_of("Root=" + fields(invocation_of["sqs-batch"]).get("root", ""))
for name in ("relay-demo-out", "relay-demo-via-sns"):
    b, c, p = by_key.get((name, "uploads/b.txt")), by_key.get((name, "uploads/c.txt")), by_key.get((name, "images/cat.jpg"))
    expect(b is not None and b == c and None not in b, f"{name}: uploads/b.txt and uploads/c.txt share the SQS invocation's trace")
    expect(inv is not None and b == inv, f"{name}: ... which is the trace Lambda handed the SQS invocation")
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
