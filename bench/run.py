"""End-to-end performance benchmark: the Rust relay (release binary) next to its Python peer.

Both run as Lambda functions would: the Rust binary with ``lambda_runtime``, the peer under
``python -m awslambdaric handler.lambda_handler``, each against its own instance of the same Runtime
API stand-in and the same moto server (scripts/moto_server.py), with the same environment
(credentials and region from env, no profile files, no IMDS). The stand-in is the one the Rust
tests use (tests/support/runtime_api.rs), served by ``examples/runtime_api.rs`` in a process of its
own (``--runtime-api``, built by scripts/bench.sh with ``cargo build --release --example
runtime_api``) and driven through its control interface by the ``RuntimeApi`` class below. It
reports its times on CLOCK_MONOTONIC, the clock of ``time.perf_counter()`` here (checked at start),
so they compare directly with the driver's own readings around ``exec``.

Measured (see also scripts/bench.sh):
- cold start: ``exec`` (taken just before ``Popen``, so fork+exec count against the function) to
  the first ``GET /2018-06-01/runtime/invocation/next`` (when the stand-in accepted its
  connection); median over several fresh processes, the two sides interleaved. A diagnostic row
  repeats it for the Rust binary with ``SSL_CERT_FILE`` set to the system CA bundle, which shows
  what reading the certificate directory at client construction costs;
- first invocation latency: ``/next`` answer to ``/response`` for a 10-record SQS batch, in those
  same fresh processes;
- CPU per invocation: utime+stime (/proc/<pid>/stat) over N warm invocations of that batch;
- peak RSS (VmHWM, /proc/<pid>/status) after those N invocations, and in a fresh process handling
  one 6 MiB SQS batch;
- call efficiency: SQS/SNS calls moto saw (``GET /_relay/calls``) for n records and k trace
  contexts, against the exact count;
- pure pipeline throughput: criterion's ``prepare`` results (benches/pipeline.rs) for Rust; the
  peer's ``plan()`` (including ``json.loads`` of the event) timed in-process for Python, both on
  one core.

Prints one markdown table on stdout (progress on stderr); ``--json`` also writes raw numbers.

Quick mode (``--quick``, or ``BENCH_QUICK=1`` in the environment): a smoke test of the harness,
not a measurement. At most 2 cold starts and 5 warm invocations per side, the first two call
efficiency cases only, and no SSL_CERT_FILE diagnostic, 6 MiB batches or Python pipeline timing
(their rows are left out of the table).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import events  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SQS_MAX_BYTES = 1024 * 1024
SNS_MAX_BYTES = 256 * 1024
TRACEPARENT_ATTRIBUTE_BYTES = len("traceparent") + len("String") + 55
PEER_DIR = HERE / "peer_python"
# The system CA bundle: Debian/Ubuntu, then Amazon Linux / RHEL (what provided.al2023 has).
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


_T0 = time.monotonic()


def log(*args) -> None:
    print(f"bench [{time.monotonic() - _T0:6.1f} s]:", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- moto


class Moto:
    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(REPO / "scripts" / "moto_server.py"), "--port", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            # The benchmark's stand-in consumer purges the queue often (see Purger).
            env={**os.environ, "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"},
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"moto did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        self.sqs = session.client("sqs", endpoint_url=self.url)
        self.sns = session.client("sns", endpoint_url=self.url)
        self.reset()

    def reset(self) -> None:
        """Fresh state: one queue and one topic (moto's reset also clears the call log)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()
        self.queue_url = self.sqs.create_queue(QueueName="relay-out")["QueueUrl"]
        self.topic_arn = self.sns.create_topic(Name="relay-out")["TopicArn"]

    def purge(self) -> None:
        self.sqs.purge_queue(QueueUrl=self.queue_url)

    def clear_calls(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_relay/calls", method="DELETE")).read()

    def calls(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/_relay/calls") as r:
            return [c for c in json.load(r) if c["operation"] in ("SendMessageBatch", "PublishBatch")]

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Purger:
    """Empties the output queue every `interval` seconds while active, as a consumer would.

    moto 5.2.5 recomputes every queue attribute (walking all messages) on each SendMessage, so a
    queue that only grows makes each call slower than the last (quadratic over a 6 MiB batch)."""

    def __init__(self, moto: Moto, interval: float = 0.25) -> None:
        self.moto, self.interval = moto, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="purger", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.moto.purge()
            except Exception as e:  # never fail the benchmark for the stand-in consumer
                log(f"purge failed: {e}")

    def __enter__(self) -> "Purger":
        self.moto.purge()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.moto.purge()


# --------------------------------------------------------------------------- Runtime API


@dataclasses.dataclass
class Result:
    request_id: str
    kind: str  # "response" or "error"
    body: bytes  # the posted body as JSON text (re-serialized by the stand-in)
    error_type: str | None
    served_at: float  # /next handed the invocation out (CLOCK_MONOTONIC s)
    done_at: float  # its response or error had arrived in full (CLOCK_MONOTONIC s)

    def json(self):
        return json.loads(self.body or b"null")


class RuntimeApi:
    """One Runtime API stand-in for one function process: ``examples/runtime_api.rs`` (the Rust
    tests' tests/support/runtime_api.rs) in a process of its own, driven over its control interface.

    ``first_next_at`` is when the connection carrying the function's first ``/next`` was accepted,
    ``Result.served_at`` when an invocation was handed out and ``Result.done_at`` when its answer
    arrived, all stamped by the stand-in on CLOCK_MONOTONIC, which is ``time.perf_counter()``'s
    clock (checked in ``__init__``): they compare directly with the driver's readings.
    """

    binary = REPO / "target" / "release" / "examples" / "runtime_api"  # set by --runtime-api
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:relay-bench"
    poll_s = 0.05  # long-poll slice: how often a wait looks at whether the function is still alive

    def __init__(self) -> None:
        self.first_next_at: float | None = None
        self.init_error = None
        # Its stdin is its lifeline: it exits when closed, so it never outlives the driver.
        self._proc = subprocess.Popen(
            [str(self.binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        lines = {}
        while "READY" not in lines:
            line = self._proc.stdout.readline()
            if not line:
                self._proc.kill()
                self._proc.wait()
                raise RuntimeError(f"{self.binary} exited before READY (status {self._proc.returncode})")
            key, _, value = line.strip().partition(" ")
            lines[key] = value
        self.address = lines["READY"]  # host:port, the value of AWS_LAMBDA_RUNTIME_API
        control = urllib.parse.urlsplit(lines["CONTROL"])
        self._conn = http.client.HTTPConnection(control.hostname, control.port, timeout=60)
        try:
            self._check_clock()
        except BaseException:
            self.close()
            raise

    def _call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        self._conn.request(method, path, body=body, headers=headers or {})
        r = self._conn.getresponse()
        data = r.read()
        if r.status not in (200, 204):
            raise RuntimeError(f"runtime API stand-in: {method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if r.status == 200 else None

    def _check_clock(self) -> None:
        if "CLOCK_MONOTONIC" not in time.get_clock_info("perf_counter").implementation:
            raise RuntimeError("time.perf_counter() is not CLOCK_MONOTONIC here; the stand-in's times would not compare")
        before = time.perf_counter()
        now = self._call("GET", "/clock")["now"]
        after = time.perf_counter()
        if not before - 1e-6 <= now <= after + 1e-6:
            raise RuntimeError(f"stand-in clock {now} outside [{before}, {after}]: not this process's perf_counter clock")

    def invoke(self, payload: bytes, trace_id: str | None = None, timeout_s: float = 60.0) -> str:
        """Queues an invocation; returns its request id."""
        headers = {
            "Content-Type": "application/json",
            "Deadline-Ms": str(int(time.time() * 1000 + timeout_s * 1000)),
            "Function-Arn": self.function_arn,
        }
        if trace_id:
            headers["Trace-Id"] = trace_id
        return self._call("POST", "/invoke", payload, headers)["request_id"]

    def wait_first_next(self, timeout: float, alive=lambda: True) -> float | None:
        """Waits until the function polls /next for the first time (or its init fails)."""
        end = time.monotonic() + timeout
        while self.first_next_at is None and self.init_error is None and time.monotonic() < end:
            if not alive():
                break
            state = self._call("GET", f"/first_next?wait_ms={int(self.poll_s * 1000)}")
            self.first_next_at, self.init_error = state["first_next_at"], state["init_error"]
        return self.first_next_at

    def wait_result(self, request_id: str, timeout: float, alive=lambda: True) -> Result:
        end = time.monotonic() + timeout
        while True:
            r = self._call("GET", f"/result/{request_id}?wait_ms={int(self.poll_s * 1000)}")
            if r is not None:
                return Result(
                    r["request_id"],
                    r["kind"],
                    json.dumps(r["body"]).encode(),
                    r["error_type"],
                    r["served_at"],
                    r["done_at"],
                )
            if time.monotonic() >= end:
                raise TimeoutError(f"no answer to invocation {request_id} within {timeout} s")
            if not alive():
                raise RuntimeError(f"function exited before answering invocation {request_id}")

    def close(self) -> None:
        self._conn.close()
        self._proc.stdout.close()
        self._proc.stdin.close()  # the stand-in exits at end of file
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --------------------------------------------------------------------------- functions


def function_env(moto: Moto, runtime_api: str, extra: dict) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "relay-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": moto.url,
        "RELAY_TARGETS": f"{moto.queue_url},{moto.topic_arn}",
    }
    env.update(extra)
    return env


class Function:
    """One function process (a cold start) serving invocations from its own Runtime API stand-in."""

    def __init__(self, kind: str, argv: list[str], cwd: Path, moto: Moto, extra_env: dict) -> None:
        self.kind = kind
        self.api = RuntimeApi()
        env = function_env(moto, self.api.address, extra_env)
        self.t_exec = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        first = self.api.wait_first_next(60, alive=lambda: self.proc.poll() is None)
        if first is None:
            self.stop()
            raise RuntimeError(
                f"{kind}: no /next within 60 s (exit {self.proc.returncode}, init error {self.api.init_error!r})"
            )
        self.cold_start_s = first - self.t_exec

    def invoke(self, payload: bytes, trace_id: str | None = events.INVOCATION_TRACE, timeout: float = 120):
        request_id = self.api.invoke(payload, trace_id)
        result = self.api.wait_result(request_id, timeout, alive=lambda: self.proc.poll() is None)
        if result.kind != "response":
            raise RuntimeError(f"{self.kind}: invocation failed: {result.error_type}: {result.body[:500]!r}")
        return result

    def cpu_ticks(self) -> int:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)

    def vm_hwm_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.api.close()


class Side:
    def __init__(self, kind: str, argv: list[str], cwd: Path, extra_env: dict) -> None:
        self.kind, self.argv, self.cwd, self.extra_env = kind, argv, cwd, extra_env

    def start(self, moto: Moto) -> Function:
        return Function(self.kind, self.argv, self.cwd, moto, self.extra_env)


# --------------------------------------------------------------------------- measurements


def no_failures(result) -> bool:
    body = result.json()
    return isinstance(body, dict) and not body.get("batchItemFailures")


def cold_starts(sides: list[Side], moto: Moto, runs: int, payload: bytes) -> dict:
    out = {s.kind: {"cold_start_s": [], "first_invocation_s": []} for s in sides}
    with Purger(moto):
        _cold_starts(sides, moto, runs, payload, out)
    return out


def _cold_starts(sides: list[Side], moto: Moto, runs: int, payload: bytes, out: dict) -> None:
    for s in sides:  # warm the page cache and bytecode caches; not measured
        f = s.start(moto)
        f.invoke(payload)
        f.stop()
    for i in range(runs):
        for s in sides:  # interleaved, so drift in machine load hits both alike
            f = s.start(moto)
            try:
                r = f.invoke(payload)
                if not no_failures(r):
                    raise RuntimeError(f"{s.kind}: first invocation reported failures: {r.body[:300]!r}")
            finally:
                f.stop()
            out[s.kind]["cold_start_s"].append(f.cold_start_s)
            out[s.kind]["first_invocation_s"].append(r.done_at - r.served_at)
        log(f"cold start {i + 1}/{runs}: " + ", ".join(f"{k} {v['cold_start_s'][-1] * 1e3:.1f} ms" for k, v in out.items()))


def warm_cpu(side: Side, moto: Moto, n: int, payload: bytes) -> dict:
    with Purger(moto):
        return _warm_cpu(side, moto, n, payload)


def _warm_cpu(side: Side, moto: Moto, n: int, payload: bytes) -> dict:
    f = side.start(moto)
    try:
        for _ in range(5):
            f.invoke(payload)
        before = f.cpu_ticks()
        t0 = time.perf_counter()
        latencies = []
        for _ in range(n):
            r = f.invoke(payload)
            latencies.append(r.done_at - r.served_at)
        wall = time.perf_counter() - t0
        after = f.cpu_ticks()
        return {
            "cpu_per_invocation_s": (after - before) / CLK_TCK / n,
            "cpu_ticks": after - before,
            "invocations": n,
            "median_latency_s": statistics.median(latencies),
            "wall_s": wall,
            "vm_hwm_kib": f.vm_hwm_kib(),
        }
    finally:
        f.stop()


def big_batch(side: Side, moto: Moto, payload: bytes, records: int, k: int) -> dict:
    moto.reset()
    f = side.start(moto)
    try:
        idle_hwm = f.vm_hwm_kib()
        moto.clear_calls()
        with Purger(moto):
            r = f.invoke(payload, timeout=600)
        hwm = f.vm_hwm_kib()
        ok = no_failures(r)
    finally:
        f.stop()
    calls = call_counts(moto, moto.queue_url, moto.topic_arn)
    expected = expected_calls(records, k, compact_sizes(records, k))
    moto.reset()
    return {
        "vm_hwm_kib": hwm,
        "idle_vm_hwm_kib": idle_hwm,
        "latency_s": r.done_at - r.served_at,
        "delivered_all": ok,
        "calls": calls,
        "expected_calls": expected,
    }


def compact_sizes(n: int, k: int, padding: int = 0) -> list[int]:
    """Bytes each message counts toward the batch limit: body plus the traceparent attribute."""
    return [
        len(events.dumps({"Records": [events.s3_record(i, padding)]})) + TRACEPARENT_ATTRIBUTE_BYTES for i in range(n)
    ]


def packed(sizes: list[int], limit: int) -> int:
    """Calls needed for messages sent in order, at most 10 entries and `limit` bytes per call."""
    calls, entries, total = 0, 0, 0
    for s in sizes:
        if calls == 0 or entries == 10 or total + s > limit:
            calls, entries, total = calls + 1, 0, 0
        entries, total = entries + 1, total + s
    return calls


def expected_calls(n: int, k: int, sizes: list[int]) -> dict:
    groups = [[sizes[i] for i in range(n) if i % k == c] for c in range(k)]
    return {
        "sqs": packed(sizes, SQS_MAX_BYTES),
        "sns": sum(packed(g, SNS_MAX_BYTES) for g in groups if g),
        "sqs_formula": math.ceil(n / 10),
        "sns_formula": sum(math.ceil(len(g) / 10) for g in groups),
    }


def call_counts(moto: Moto, queue_url: str, topic_arn: str) -> dict:
    calls = moto.calls()
    sqs = [c for c in calls if c["operation"] == "SendMessageBatch" and c["target"] == queue_url]
    sns = [c for c in calls if c["operation"] == "PublishBatch" and c["target"] == topic_arn]
    failed = [c for c in calls if c.get("status") not in (200, None)]
    per_header: dict[str, int] = {}
    for c in sns:
        per_header[c["trace_header"]] = per_header.get(c["trace_header"], 0) + 1
    return {
        "sqs": len(sqs),
        "sns": len(sns),
        "sqs_entries": sum(c["entries"] or 0 for c in sqs),
        "sns_entries": sum(c["entries"] or 0 for c in sns),
        "sns_calls_per_trace": per_header,
        "http_errors": len(failed),
    }


CALL_CASES = [  # (n records, k trace contexts, padding bytes per record)
    (1, 1, 0),
    (10, 1, 0),
    (25, 3, 0),
    (100, 7, 0),
    (250, 10, 0),
    (20, 2, 120_000),  # ~120 KB messages: 8 per SQS call, 2 per SNS call
]


def call_efficiency(side: Side, moto: Moto, cases: list[tuple[int, int, int]] = CALL_CASES) -> list[dict]:
    moto.reset()
    f = side.start(moto)
    out = []
    try:
        for n, k, padding in cases:
            moto.purge()
            moto.clear_calls()
            r = f.invoke(events.sqs_event(n, k, padding))
            got = call_counts(moto, moto.queue_url, moto.topic_arn)
            want = expected_calls(n, k, compact_sizes(n, k, padding))
            canonical = {events.record_trace(c, k) for c in range(k)}
            ok = (
                no_failures(r)
                and got["sqs"] == want["sqs"]
                and got["sns"] == want["sns"]
                and got["sqs_entries"] == n
                and got["sns_entries"] == n
                and set(got["sns_calls_per_trace"]) == canonical
                and got["http_errors"] == 0
            )
            out.append({"n": n, "k": k, "padding": padding, "got": got, "want": want, "pass": ok})
    finally:
        f.stop()
    moto.reset()
    return out


PIPELINE_SNIPPET = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import events, handler
cases = [("direct", events.direct_event(), 1), ("sqs_10", events.sqs_event(10, 3), 10)]
payload, n = events.max_sqs_event(3)
cases.append(("sqs_6mb", payload, n))
payload, n = events.max_sqs_event(10**9)
cases.append(("sqs_6mb_distinct", payload, n))
trace = handler.parse_trace_header(events.INVOCATION_TRACE)
out = {}
for name, payload, records in cases:
    text = payload.decode()
    def once():
        return handler.plan(json.loads(text), trace)
    once()
    iterations, t0 = 0, time.thread_time()
    while True:
        once(); iterations += 1
        elapsed = time.thread_time() - t0
        if elapsed >= float(sys.argv[3]) and iterations >= 3:
            break
    out[name] = records * iterations / elapsed
print(json.dumps(out))
"""


def python_pipeline(python: str, moto: Moto, seconds: float, core: str | None) -> dict:
    env = function_env(moto, "127.0.0.1:9", {})
    argv = [python, "-c", PIPELINE_SNIPPET, str(HERE), str(PEER_DIR), str(seconds)]
    if core is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", core, *argv]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"python pipeline timing failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def criterion_results(directory: Path) -> dict:
    out = {}
    for name in ("direct", "sqs_10", "sqs_6mb", "sqs_6mb_distinct"):
        base = directory / "prepare" / name / "new"
        try:
            estimates = json.loads((base / "estimates.json").read_text())
            bench = json.loads((base / "benchmark.json").read_text())
        except FileNotFoundError:
            continue
        elements = bench["throughput"]["Elements"]
        out[name] = {
            "records": elements,
            "records_per_s": elements / (estimates["median"]["point_estimate"] / 1e9),
            "records_per_s_mean": elements / (estimates["mean"]["point_estimate"] / 1e9),
        }
    return out


# --------------------------------------------------------------------------- report


def fmt_ms(s: float | None) -> str:
    return "n/a" if s is None else (f"{s * 1e3:.1f} ms" if s * 1e3 >= 10 else f"{s * 1e3:.2f} ms")


def fmt_mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def fmt_rate(r: float | None) -> str:
    return "n/a" if r is None else f"{r / 1000:,.0f}k rec/s"


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    q = a / b
    return f"{q:.3f}" if q < 0.1 else f"{q:.2f}"


def mark(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "FAIL")


def report(res: dict) -> str:
    rust, py = res["rust"], res.get("python") or {}
    rows = []

    def row(metric, r, p, q, target, ok):
        rows.append(f"| {metric} | {r} | {p} | {q} | {target} | {mark(ok)} |")

    cs_r = statistics.median(rust["cold"]["cold_start_s"])
    cs_p = statistics.median(py["cold"]["cold_start_s"]) if py else None
    row(
        f"cold start: exec → first /next (median of {len(rust['cold']['cold_start_s'])})",
        fmt_ms(cs_r),
        fmt_ms(cs_p),
        ratio(cs_r, cs_p),
        "Rust ≤ 1/20 of Python (≤ 0.05)",
        None if cs_p is None else cs_r <= cs_p / 20,
    )
    diag = res.get("rust_bundle_cold")
    if diag:
        cb = statistics.median(diag["cold_start_s"])
        row(
            f"cold start, Rust, trust store from one PEM bundle (SSL_CERT_FILE={diag['ssl_cert_file']}; diagnostic)",
            fmt_ms(cb),
            fmt_ms(cs_p),
            ratio(cb, cs_p),
            "—",
            None,
        )
    fi_r = statistics.median(rust["cold"]["first_invocation_s"])
    fi_p = statistics.median(py["cold"]["first_invocation_s"]) if py else None
    row("first invocation latency, 10-record SQS batch → moto (median)", fmt_ms(fi_r), fmt_ms(fi_p), ratio(fi_r, fi_p), "—", None)
    w_r, w_p = rust["warm"], py.get("warm")
    row(
        f"CPU time per warm invocation (utime+stime over {w_r['invocations']}; 10 records → SQS + SNS)",
        fmt_ms(w_r["cpu_per_invocation_s"]),
        fmt_ms(w_p["cpu_per_invocation_s"]) if w_p else "n/a",
        ratio(w_r["cpu_per_invocation_s"], w_p["cpu_per_invocation_s"] if w_p else None),
        "—",
        None,
    )
    row(
        "warm invocation latency (median)",
        fmt_ms(w_r["median_latency_s"]),
        fmt_ms(w_p["median_latency_s"]) if w_p else "n/a",
        ratio(w_r["median_latency_s"], w_p["median_latency_s"] if w_p else None),
        "—",
        None,
    )
    row(
        "peak RSS (VmHWM) after the warm invocations",
        fmt_mib(w_r["vm_hwm_kib"]),
        fmt_mib(w_p["vm_hwm_kib"]) if w_p else "n/a",
        ratio(w_r["vm_hwm_kib"], w_p["vm_hwm_kib"] if w_p else None),
        "—",
        None,
    )
    b_r, b_p = rust.get("big"), py.get("big")
    n_big = res["big_records"]
    if b_r:  # not in quick mode
        row(
            f"peak RSS (VmHWM), one 6 MiB SQS batch ({n_big} records) → moto",
            fmt_mib(b_r["vm_hwm_kib"]),
            fmt_mib(b_p["vm_hwm_kib"]) if b_p else "n/a",
            ratio(b_r["vm_hwm_kib"], b_p["vm_hwm_kib"] if b_p else None),
            "Rust ≤ 32 MiB",
            b_r["vm_hwm_kib"] <= 32 * 1024 and b_r["delivered_all"],
        )
        row(
            "6 MiB SQS batch: invocation latency",
            fmt_ms(b_r["latency_s"]),
            fmt_ms(b_p["latency_s"]) if b_p else "n/a",
            ratio(b_r["latency_s"], b_p["latency_s"] if b_p else None),
            "—",
            None,
        )
        seq = res.get("rust_big_sequential")
        if seq:
            row(
                "6 MiB SQS batch: invocation latency, Rust with RELAY_MAX_IN_FLIGHT=1 "
                "(diagnostic: moto is one Python process; concurrent calls contend for its interpreter lock)",
                fmt_ms(seq["latency_s"]),
                fmt_ms(b_p["latency_s"]) if b_p else "n/a",
                ratio(seq["latency_s"], b_p["latency_s"] if b_p else None),
                "—",
                None,
            )
    cases = (
        ("direct", "direct S3 event (1 record)"),
        ("sqs_10", "10-record SQS batch"),
        ("sqs_6mb", f"6 MiB SQS batch ({n_big} records)"),
        ("sqs_6mb_distinct", "6 MiB SQS batch, a trace context per record"),
    )
    for name, label in cases:
        r = res["pipeline_rust"].get(name, {}).get("records_per_s")
        p = (res.get("pipeline_python") or {}).get(name)
        row(
            f"pipeline throughput (CPU time, one core): {label}",
            fmt_rate(r),
            fmt_rate(p),
            ratio(r, p),
            "Rust ≥ 200k rec/s",
            None if r is None else r >= 200_000,
        )

    def calls_row(label, got_r, got_p, want, ok_r, ok_p):
        w = f"SQS {want['sqs']} + SNS {want['sns']}"
        if (want["sqs"], want["sns"]) != (want["sqs_formula"], want["sns_formula"]):
            w += f" (byte limit; {want['sqs_formula']} + {want['sns_formula']} by count)"
        g = lambda c: "n/a" if c is None else f"{c['sqs']} + {c['sns']}"  # noqa: E731
        ok = ok_r if ok_p is None else ok_r and ok_p
        rows.append(f"| calls: {label} | {g(got_r)} | {g(got_p)} | — | = {w} | {mark(ok)} |")

    py_calls = {(c["n"], c["k"], c["padding"]): c for c in py.get("calls", [])}
    for c in rust["calls"]:
        pc = py_calls.get((c["n"], c["k"], c["padding"]))
        label = f"n={c['n']}, k={c['k']}" + (f", {c['padding'] // 1000} KB records" if c["padding"] else "")
        calls_row(label, c["got"], pc["got"] if pc else None, c["want"], c["pass"], pc["pass"] if pc else None)
    big_ok = lambda b: (  # noqa: E731
        b["calls"]["sqs"] == b["expected_calls"]["sqs"] and b["calls"]["sns"] == b["expected_calls"]["sns"]
    )
    if b_r:
        calls_row(
            f"n={n_big}, k=3 (6 MiB batch)",
            b_r["calls"],
            b_p["calls"] if b_p else None,
            b_r["expected_calls"],
            big_ok(b_r),
            big_ok(b_p) if b_p else None,
        )
    head = "| metric | Rust | Python | ratio (Rust / Python) | target | pass/fail |\n| --- | --- | --- | --- | --- | --- |\n"
    return head + "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "s3-trace-relay"))
    parser.add_argument(
        "--runtime-api",
        default=str(RuntimeApi.binary),
        help="the Runtime API stand-in (cargo build --release --example runtime_api)",
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with boto3/moto/awslambdaric")
    parser.add_argument("--criterion-dir", default=str(REPO / "target" / "criterion"))
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--warm-invocations", type=int, default=200)
    parser.add_argument("--pipeline-seconds", type=float, default=3.0)
    parser.add_argument("--core", default="1", help="core for the single-core pipeline timing")
    parser.add_argument("--no-python", action="store_true", help="Rust only (e.g. awslambdaric missing)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="smoke test of the harness, not a measurement (also BENCH_QUICK=1); see the module doc",
    )
    args = parser.parse_args()
    RuntimeApi.binary = Path(args.runtime_api).resolve()
    call_cases = CALL_CASES
    if args.quick:
        args.cold_runs = min(args.cold_runs, 2)
        args.warm_invocations = min(args.warm_invocations, 5)
        call_cases = CALL_CASES[:2]
        log("quick mode: a smoke test of the harness, not a measurement")
    # Killed (timeout, Ctrl-C in a wrapper): unwind, so every `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    rust = Side("rust", [str(Path(args.binary).resolve())], REPO, {})
    sides = [rust]
    python = None
    if not args.no_python:
        python = Side(
            "python",
            [args.python, "-m", "awslambdaric", "handler.lambda_handler"],
            PEER_DIR,
            {"LAMBDA_TASK_ROOT": str(PEER_DIR), "PYTHONPATH": str(PEER_DIR)},
        )
        sides.append(python)

    moto = Moto(args.python)
    res: dict = {"rust": {}, "python": {}}
    try:
        sqs_10 = events.sqs_event(10, 3)
        log("cold starts")
        # Diagnostic: the same binary with its trust store read from the system's one PEM bundle
        # (SSL_CERT_FILE) instead of the bundle plus every file of the certificate directory.
        bundle = None if args.quick else next((b for b in CA_BUNDLES if Path(b).is_file()), None)
        diagnostic = [Side("rust_bundle", rust.argv, REPO, {"SSL_CERT_FILE": bundle})] if bundle else []
        cold = cold_starts(sides + diagnostic, moto, args.cold_runs, sqs_10)
        for s in sides:
            res[s.kind]["cold"] = cold[s.kind]
        if bundle:
            res["rust_bundle_cold"] = {"ssl_cert_file": bundle, **cold["rust_bundle"]}
        for s in sides:
            log(f"{s.kind}: {args.warm_invocations} warm invocations")
            res[s.kind]["warm"] = warm_cpu(s, moto, args.warm_invocations, sqs_10)
        big, n_big = events.max_sqs_event(3)
        res["big_records"] = n_big
        if not args.quick:
            for s in sides:
                log(f"{s.kind}: 6 MiB SQS batch ({n_big} records)")
                res[s.kind]["big"] = big_batch(s, moto, big, n_big, 3)
            # Diagnostic: moto is one Python process, so concurrent calls queue on its interpreter lock;
            # one call at a time (as the Python peer makes them) shows what the stand-in itself costs.
            log("rust: 6 MiB SQS batch, RELAY_MAX_IN_FLIGHT=1 (diagnostic)")
            sequential = Side("rust_sequential", rust.argv, REPO, {"RELAY_MAX_IN_FLIGHT": "1"})
            res["rust_big_sequential"] = big_batch(sequential, moto, big, n_big, 3)
        for s in sides:
            log(f"{s.kind}: call efficiency")
            res[s.kind]["calls"] = call_efficiency(s, moto, call_cases)
        res["pipeline_rust"] = criterion_results(Path(args.criterion_dir))
        if python and not args.quick:
            log("python: pure pipeline timing")
            res["pipeline_python"] = python_pipeline(args.python, moto, args.pipeline_seconds, args.core)
    finally:
        moto.stop()
    if not python:
        res["python"] = None
    res["quick"] = args.quick
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
