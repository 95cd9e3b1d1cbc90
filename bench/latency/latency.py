"""Latency benchmark: how long each function takes to relay a batch when every SQS/SNS call takes a
fixed time, next to the floor that time sets.

Eight functions, one after another in the same run, each a fresh process under its own instance of
the Runtime API stand-in that bench/run.py uses (``examples/runtime_api.rs``), all calling the same
latency stand-in for SQS and SNS (``examples/latency_standin.rs``: every call held ``--delay-ms``,
checked, counted):

- ``rust seq`` / ``rust 16``: the release relay with ``RELAY_MAX_IN_FLIGHT=1`` / its default at the
  template's 256 MiB (16);
- ``rust 1769 MiB`` / ``rust 3538 MiB``: the release relay at its default for 1,769 MiB (Lambda's
  one full vCPU): 30 / for 3,538 MiB (two vCPUs, what this bench's machine gives every function): 60;
- ``python seq``: ``bench/peer_python`` (boto3 under awslambdaric, one call after another);
- ``python 16``: ``bench/latency/peer_python_concurrent`` (the same, calls on a 16-thread pool);
- ``node seq`` / ``node all``: ``bench/latency/peer_node`` (AWS SDK for JavaScript v3), calls one
  after another / all at once (``Promise.all``; the SDK's HTTP handler allows 50 sockets per client).

Workloads: SQS-wrapped S3 batches of n = 10, 1,000 and 10,000 records (compact records, so 10,000
fit in Lambda's 6 MB payload) to one queue and one topic, with one trace context per 10 records and
with one per record. Calls: ⌈n/10⌉ SendMessageBatch + Σ⌈nᵢ/10⌉ PublishBatch over the trace groups.
Floor: ⌈calls / in-flight⌉ × delay, in-flight being the function's own concurrency (for ``node
all``: each client's 50 sockets, the two clients side by side: max(⌈sqs/50⌉, ⌈sns/50⌉) × delay).

Per function and workload, a fresh process: init (exec → first ``/next``), one warm-up invocation
(10 records), then the measured one: duration (``/next`` served → ``/response`` received), time to
the first call (the stand-in's first request after ``/next`` served the batch), connections the
stand-in accepted and its most calls in flight during it, CPU (the process's threads, from
/proc/<pid>/task/*/schedstat) and peak RSS (VmHWM) after it. Every measured invocation is checked:
no failures reported, no call refused by the stand-in's checks, exactly n entries to each target,
the expected number of calls and of distinct trace contexts on each.

Correctness against moto first (``--no-moto`` skips it): each function relays 100 records (10
contexts) through moto, whose call log must show the right calls, entries and per-call trace
headers ("moto ok" in the ``check`` column).

Sequential variants skip workloads whose floor exceeds ``--max-sequential-s`` (default 60 s: the
10,000-record one-context-per-record batch is 11,000 calls, 165 s at 15 ms); ``--full`` runs them.
``--quick``: n = 10 and 1,000 only, a smoke test.

Prints one markdown table on stdout (progress on stderr); ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  bench/run.py: RuntimeApi, Moto, call_counts

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
QUEUE_PATH = "/123456789012/out"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:out-topic"
INVOCATION_TRACE = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1"
NODE_SOCKETS_PER_CLIENT = 50  # @smithy/node-http-handler's default maxSockets

_T0 = time.monotonic()


def log(*args) -> None:
    print(f"bench-latency [{time.monotonic() - _T0:6.1f} s]:", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- events


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def trace(c: int) -> str:
    return f"Root=1-6745a1b2-{c:024x};Parent={c + 1:016x};Sampled=1"


def sqs_record(i: int, context: int) -> dict:
    s3 = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2026-12-02T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": "relay-bench-uploads"},
            "object": {"key": f"uploads/{i:06}.jpg", "size": 1024, "sequencer": f"0062E99A88DC{i:06X}"},
        },
    }
    return {
        "messageId": f"00000000-0000-4000-8000-{i:012}",
        "receiptHandle": f"AQEB{i:08}",
        "body": dumps({"Records": [s3]}),
        "attributes": {"AWSTraceHeader": trace(context)},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:relay-source",
    }


def sqs_event(n: int, per_context: int) -> bytes:
    """n records, records [c·per_context, (c+1)·per_context) sharing trace context c."""
    payload = dumps({"Records": [sqs_record(i, i // per_context) for i in range(n)]}).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{n} records: {len(payload)} bytes, over Lambda's 6 MB")
    return payload


def expected_calls(n: int, per_context: int) -> tuple[int, int, int]:
    """(SendMessageBatch calls, PublishBatch calls, trace contexts); byte limits are not reached."""
    contexts = math.ceil(n / per_context)
    sizes = [min(per_context, n - c * per_context) for c in range(contexts)]
    return math.ceil(n / 10), sum(math.ceil(s / 10) for s in sizes), contexts


# --------------------------------------------------------------------------- stand-ins


class LatencyStandin:
    def __init__(self, binary: Path, delay_ms: float) -> None:
        self.proc = subprocess.Popen(
            [str(binary), "--delay-ms", str(delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"{binary} did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.delay_ms = delay_ms

    def _call(self, method: str, path: str) -> dict:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def stats(self) -> dict:
        return self._call("GET", "/_stats")

    def reset(self) -> dict:
        return self._call("POST", "/_reset")

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def base_env(runtime_api: str, endpoint: str, targets: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "relay-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": endpoint,
        "RELAY_TARGETS": targets,
    }


DIAGNOSTIC = {"rust 32", "rust 64", "rust 80", "rust 100", "rust 128"}


class Variant:
    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict, in_flight: int, per_client: bool = False):
        self.name, self.argv, self.cwd, self.env = name, argv, cwd, env
        self.in_flight, self.per_client = in_flight, per_client

    @property
    def sequential(self) -> bool:
        return self.in_flight == 1

    def limit(self) -> str:
        return f"{self.in_flight}/client" if self.per_client else str(self.in_flight)

    def floor_s(self, sqs: int, sns: int, delay_s: float) -> float:
        if self.per_client:
            return max(math.ceil(sqs / self.in_flight), math.ceil(sns / self.in_flight)) * delay_s
        return math.ceil((sqs + sns) / self.in_flight) * delay_s


class Process:
    """One function process (a cold start) under its own Runtime API stand-in."""

    extra_env: dict = {}  # --env

    def __init__(self, variant: Variant, endpoint: str, targets: str) -> None:
        self.variant = variant
        self.api = base.RuntimeApi()
        env = {**base_env(self.api.address, endpoint, targets), **self.extra_env, **variant.env}
        t_exec = time.perf_counter()
        self.proc = subprocess.Popen(
            variant.argv,
            cwd=variant.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        first = self.api.wait_first_next(60, alive=self.alive)
        if first is None:
            err = self._stop()
            raise RuntimeError(f"{variant.name}: no /next within 60 s: {err[-1500:]}")
        self.init_s = first - t_exec

    def alive(self) -> bool:
        return self.proc.poll() is None

    def invoke(self, payload: bytes, timeout: float = 600):
        request_id = self.api.invoke(payload, INVOCATION_TRACE, timeout_s=timeout)
        r = self.api.wait_result(request_id, timeout, alive=self.alive)
        if r.kind != "response":
            raise RuntimeError(f"{self.variant.name}: invocation failed: {r.error_type}: {r.body[:500]!r}")
        body = r.json()
        if not isinstance(body, dict) or body.get("batchItemFailures"):
            raise RuntimeError(f"{self.variant.name}: reported failures: {r.body[:500]!r}")
        return r

    def cpu_s(self) -> float:
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread that just ended
        return total / 1e9

    def vm_hwm_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def _stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate()
        self.api.close()
        return (err or b"").decode(errors="replace")

    def stop(self) -> None:
        self._stop()


# --------------------------------------------------------------------------- measurements


def measure(variant: Variant, standin: LatencyStandin, targets: str, n: int, per_context: int, payload: bytes) -> dict:
    sqs_want, sns_want, contexts = expected_calls(n, per_context)
    delay_s = standin.delay_ms / 1e3
    p = Process(variant, standin.url, targets)
    try:
        p.invoke(sqs_event(10, 10))  # warm-up: clients and first connections, as in a warm function
        standin.reset()
        cpu0 = p.cpu_s()
        r = p.invoke(payload)
        cpu = p.cpu_s() - cpu0
        hwm = p.vm_hwm_kib()
        stats = standin.reset()
    finally:
        p.stop()
    got_sqs = stats["calls"].get("SendMessageBatch", 0)
    got_sns = stats["calls"].get("PublishBatch", 0)
    problems = []
    if stats["invalid"]:
        problems.append(f"{stats['invalid']} calls refused: {stats['errors'][:3]}")
    if (got_sqs, got_sns) != (sqs_want, sns_want):
        problems.append(f"calls {got_sqs} + {got_sns}, expected {sqs_want} + {sns_want}")
    entries = {t: e for t, e in stats["targets"].items()}
    if sorted(entries.values()) != [n, n] or TOPIC_ARN not in entries:
        problems.append(f"entries per target {entries}, expected {n} each")
    if (stats["sqs_trace_headers"], stats["sns_trace_headers"]) != (contexts, contexts):
        problems.append(
            f"trace contexts SQS {stats['sqs_trace_headers']} SNS {stats['sns_trace_headers']}, expected {contexts}"
        )
    floor = variant.floor_s(sqs_want, sns_want, delay_s)
    duration = r.done_at - r.served_at
    first_call = stats["first_call_at"] - r.served_at if stats["first_call_at"] is not None else None
    return {
        "function": variant.name,
        "n": n,
        "records_per_context": per_context,
        "contexts": contexts,
        "calls": {"sqs": got_sqs, "sns": got_sns},
        "expected_calls": {"sqs": sqs_want, "sns": sns_want},
        "in_flight_limit": variant.limit(),
        "floor_s": floor,
        "duration_s": duration,
        "ratio": duration / floor,
        "first_call_s": first_call,
        "connections_opened": stats["connections_opened"],
        "max_in_flight": stats["max_in_flight"],
        "held_ms_mean": stats["held_ms_mean"],
        "held_ms_max": stats["held_ms_max"],
        "cpu_s": cpu,
        "vm_hwm_kib": hwm,
        "init_s": p.init_s,
        "payload_bytes": len(payload),
        "problems": problems,
    }


def init_only(variant: Variant, standin: LatencyStandin, targets: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        p = Process(variant, standin.url, targets)
        out.append(p.init_s)
        p.stop()
    return out


def moto_check(variant: Variant, moto, n: int = 100, per_context: int = 10) -> dict:
    moto.reset()
    moto.clear_calls()
    targets = f"{moto.queue_url},{moto.topic_arn}"
    p = Process(variant, moto.url, targets)
    try:
        p.invoke(sqs_event(n, per_context))
    finally:
        p.stop()
    got = base.call_counts(moto, moto.queue_url, moto.topic_arn)
    sqs_want, sns_want, contexts = expected_calls(n, per_context)
    canonical = {trace(c) for c in range(contexts)}
    ok = (
        (got["sqs"], got["sns"]) == (sqs_want, sns_want)
        and (got["sqs_entries"], got["sns_entries"]) == (n, n)
        and set(got["sns_calls_per_trace"]) == canonical
        and got["http_errors"] == 0
    )
    return {"pass": ok, "got": got}


# --------------------------------------------------------------------------- report


def ms(s: float | None) -> str:
    if s is None:
        return "n/a"
    v = s * 1e3
    return f"{v:,.0f} ms" if v >= 100 else (f"{v:.1f} ms" if v >= 1 else f"{v:.2f} ms")


def report(res: dict) -> str:
    head = (
        "| records (contexts) | function | calls SQS + SNS | in flight (limit / seen) | floor | duration "
        "| ratio | first call | connections | CPU | peak RSS | init | check |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    moto = res.get("moto") or {}
    for r in res["rows"]:
        label = f"{r['n']:,} ({r['contexts']:,})"
        if r.get("skipped"):
            rows.append(
                f"| {label} | {r['function']} | {r['expected_calls']['sqs']:,} + {r['expected_calls']['sns']:,} "
                f"| {r['in_flight_limit']} / — | {ms(r['floor_s'])} | skipped (floor > {res['max_sequential_s']:.0f} s; "
                "--full runs it) | | | | | | | |"
            )
            continue
        check = "ok" if not r["problems"] else "FAIL: " + "; ".join(r["problems"])
        m = moto.get(r["function"])
        if m is not None:
            check += ", moto ok" if m["pass"] else ", moto FAIL"
        rows.append(
            f"| {label} | {r['function']} | {r['calls']['sqs']:,} + {r['calls']['sns']:,} "
            f"| {r['in_flight_limit']} / {r['max_in_flight']} | {ms(r['floor_s'])} | {ms(r['duration_s'])} "
            f"| {r['ratio']:.2f} | {ms(r['first_call_s'])} | {r['connections_opened']} | {ms(r['cpu_s'])} "
            f"| {r['vm_hwm_kib'] / 1024:.1f} MiB | {ms(r['init_s'])} | {check} |"
        )
    for name, v in res["init"].items():
        if not v:  # --init-runs 0
            continue
        rows.append(
            f"| init only (median of {len(v)}) | {name} | | | | | | | | | | {ms(statistics.median(v))} | |"
        )
    held = [r for r in res["rows"] if r.get("held_ms_mean") is not None]
    if held:
        mean = statistics.fmean(r["held_ms_mean"] for r in held)
        worst = max(r["held_ms_max"] for r in held)
        rows.append(
            f"\nThe stand-in held each call {mean:.2f} ms on average (the floor counts {res['delay_ms']:g} ms; "
            f"longest {worst:.1f} ms)."
        )
    if res.get("runtime_floor"):
        floors = ", ".join(f"{ms(f['duration_s'])} at {f['n']:,} records ({f['payload_bytes']:,} bytes), "
                           f"peak RSS {f['peak_rss_kib'] / 1024:.1f} MiB" for f in res["runtime_floor"])
        rows.append(
            f"\n`lambda_runtime` alone (`examples/runtime_floor.rs`: body set aside, answers `{{}}`) took {floors} "
            "(median of 3) from /next served to its answer: no handler can make its first call sooner."
        )
    return head + "\n".join(rows)


def runtime_floor(argv: list[str], standin: LatencyStandin, targets: str, n: int, payload: bytes) -> dict:
    """How long lambda_runtime itself takes to hand `payload` to a handler and send its answer: the
    median of three fresh processes, each after a 10-record warm-up, as the functions are measured."""
    durations, rss = [], []
    for _ in range(3):
        p = Process(Variant("runtime floor", argv, REPO, {}, 1), standin.url, targets)
        try:
            p.invoke(sqs_event(10, 10))
            r = p.invoke(payload)
            rss.append(p.vm_hwm_kib())
        finally:
            p.stop()
        durations.append(r.done_at - r.served_at)
    return {"n": n, "payload_bytes": len(payload), "duration_s": statistics.median(durations), "runs_s": durations,
            "peak_rss_kib": statistics.median(rss)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--binary", default=str(REPO / "target/release/s3-trace-relay"))
    parser.add_argument("--runtime-api", default=str(REPO / "target/release/examples/runtime_api"))
    parser.add_argument("--standin", default=str(REPO / "target/release/examples/latency_standin"))
    parser.add_argument("--hello", default=str(REPO / "target/release/examples/hello_lambda"))
    parser.add_argument("--runtime-floor", default=str(REPO / "target/release/examples/runtime_floor"))
    parser.add_argument("--python", default=sys.executable, help="interpreter with boto3 and awslambdaric")
    parser.add_argument("--node", default="node")
    parser.add_argument("--delay-ms", type=float, default=15.0, help="each SQS/SNS call's time (default 15)")
    parser.add_argument("--max-sequential-s", type=float, default=60.0)
    parser.add_argument("--init-runs", type=int, default=5, help="extra launches per function for init")
    parser.add_argument(
        "--only", help="comma-separated function names (default: all but the diagnostic rust 32/64/80/100/128)"
    )
    parser.add_argument("--full", action="store_true", help="also the sequential runs over --max-sequential-s")
    parser.add_argument("--quick", action="store_true", help="n = 10 and 1,000 only; a smoke test")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for every function"
    )
    parser.add_argument("--sizes", help="comma-separated record counts (default 10,1000,10000)")
    parser.add_argument(
        "--per-context", help="comma-separated records per trace context (default 10,1: one context per 10, per 1)"
    )
    parser.add_argument("--no-moto", action="store_true", help="skip the check of each function against moto")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args()
    base.RuntimeApi.binary = Path(args.runtime_api).resolve()
    Process.extra_env = dict(e.split("=", 1) for e in args.env)
    py_peer = BENCH / "peer_python"
    py_conc = HERE / "peer_python_concurrent"
    node_peer = HERE / "peer_node"
    variants = [
        Variant("rust seq", [args.binary], REPO, {"RELAY_MAX_IN_FLIGHT": "1"}, 1),
        Variant("rust 16", [args.binary], REPO, {}, 16),
        Variant("rust 1769 MiB", [args.binary], REPO, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, 30),
        Variant("rust 3538 MiB", [args.binary], REPO, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538"}, 60),
        Variant(
            "python seq",
            [args.python, "-m", "awslambdaric", "handler.lambda_handler"],
            py_peer,
            {"LAMBDA_TASK_ROOT": str(py_peer), "PYTHONPATH": str(py_peer)},
            1,
        ),
        Variant(
            "python 16",
            [args.python, "-m", "awslambdaric", "handler.lambda_handler"],
            py_conc,
            {"LAMBDA_TASK_ROOT": str(py_conc), "PYTHONPATH": str(py_conc), "PEER_MAX_IN_FLIGHT": "16"},
            16,
        ),
        Variant("node seq", [args.node, "index.js"], node_peer, {"PEER_MODE": "sequential"}, 1),
        Variant("node all", [args.node, "index.js"], node_peer, {"PEER_MODE": "all"}, NODE_SOCKETS_PER_CLIENT, True),
    ]
    # Diagnostic: the relay at other in-flight caps, run only when named in --only.
    variants += [
        Variant(f"rust {n}", [args.binary], REPO, {"RELAY_MAX_IN_FLIGHT": str(n)}, n) for n in (32, 64, 80, 100, 128)
    ]
    names = {s.strip() for s in args.only.split(",")} if args.only else None
    variants = [v for v in variants if (v.name in names if names else v.name not in DIAGNOSTIC)]
    hello = Variant("hello_lambda (floor)", [args.hello], REPO, {}, 1)
    sizes = [10, 1000] if args.quick else [10, 1000, 10000]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    per_contexts = [int(k) for k in args.per_context.split(",")] if args.per_context else [10, 1]
    workloads = [(n, per_context) for n in sizes for per_context in per_contexts]
    payloads = {w: sqs_event(*w) for w in workloads}
    standin = LatencyStandin(Path(args.standin), args.delay_ms)
    targets = f"{standin.url}{QUEUE_PATH},{TOPIC_ARN}"
    load_before = os.getloadavg()
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform(), "loadavg_before": load_before},
        "delay_ms": args.delay_ms,
        "max_sequential_s": args.max_sequential_s,
        "quick": args.quick,
        "rows": [],
        "init": {},
    }
    try:
        if not args.no_moto:
            moto = base.Moto(args.python)
            try:
                res["moto"] = {}
                for v in variants:
                    log(f"moto check: {v.name}")
                    res["moto"][v.name] = moto_check(v, moto)
            finally:
                moto.stop()
        for n, per_context in workloads:
            payload = payloads[(n, per_context)]
            sqs_want, sns_want, contexts = expected_calls(n, per_context)
            for v in variants:  # interleaved: drift in machine load hits every function alike
                floor = v.floor_s(sqs_want, sns_want, args.delay_ms / 1e3)
                if v.sequential and floor > args.max_sequential_s and not args.full:
                    res["rows"].append(
                        {
                            "function": v.name,
                            "n": n,
                            "records_per_context": per_context,
                            "contexts": contexts,
                            "expected_calls": {"sqs": sqs_want, "sns": sns_want},
                            "in_flight_limit": v.limit(),
                            "floor_s": floor,
                            "skipped": True,
                        }
                    )
                    continue
                log(f"n={n} contexts={contexts} ({len(payload):,} bytes): {v.name} (floor {ms(floor)})")
                row = measure(v, standin, targets, n, per_context, payload)
                log(
                    f"  {ms(row['duration_s'])}, ratio {row['ratio']:.2f}, first call {ms(row['first_call_s'])}, "
                    f"{row['connections_opened']} connections, max in flight {row['max_in_flight']}, "
                    f"held {row['held_ms_mean'] or 0:.2f} ms"
                    + (f", PROBLEMS: {row['problems']}" if row["problems"] else "")
                )
                res["rows"].append(row)
        biggest = max(workloads, key=lambda w: len(payloads[w]))
        log(f"runtime floor: examples/runtime_floor on {biggest[0]:,} records")
        res["runtime_floor"] = [runtime_floor([args.runtime_floor], standin, targets, biggest[0], payloads[biggest])]
        log("init: hello_lambda and each function")
        for v in [hello, *variants]:
            res["init"][v.name] = init_only(v, standin, targets, args.init_runs)
    finally:
        standin.stop()
    res["machine"]["loadavg_after"] = os.getloadavg()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))
    print(report(res))
    failed = [r for r in res["rows"] if r.get("problems")] + [
        k for k, m in (res.get("moto") or {}).items() if not m["pass"]
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
