"""Peak memory of the relay handling 6 MiB SQS batches concurrently: the figure behind the default
``MemorySize`` of template.yaml and the CDK construct.

For each ``AWS_LAMBDA_MAX_CONCURRENCY`` in ``--concurrency`` (default 1, 4, 8): a fresh release relay
process (``lambda_runtime``'s ``run_concurrent`` polls with that many workers, as under Lambda
Managed Instances), that many of the largest SQS events Lambda hands a function (6 MiB, 4,523
records, ``bench/events.py``) queued at once on the Runtime API stand-in, and the process's peak
RSS (``VmHWM``, /proc/<pid>/status) once every one is answered. moto stands in for SQS and SNS, as
in ``bench/run.py``, whose classes this reuses; a consumer empties the queue while it runs.

    scripts/bootstrap.sh && cargo build --release && cargo build --release --example runtime_api
    .venv/bin/python bench/memory.py

Prints one markdown table: concurrency, peak RSS, peak RSS per concurrent invocation, wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import events  # noqa: E402
import run  # noqa: E402


def peak_rss(side: run.Side, moto: run.Moto, payload: bytes, concurrency: int) -> tuple[int, float]:
    """Peak RSS (KiB) of one process serving `concurrency` copies of `payload` at once, and the wall time."""
    function = side.start(moto)
    try:
        started = time.perf_counter()
        with run.Purger(moto):
            # moto answers one call at a time: a deadline far enough out that none is cut short.
            ids = [function.api.invoke(payload, events.INVOCATION_TRACE, timeout_s=900) for _ in range(concurrency)]
            for request_id in ids:
                result = function.api.wait_result(request_id, 900, alive=lambda: function.proc.poll() is None)
                if result.kind != "response" or not run.no_failures(result):
                    raise RuntimeError(f"invocation failed: {result.error_type}: {result.body[:300]!r}")
        return function.vm_hwm_kib(), time.perf_counter() - started
    finally:
        function.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--binary", default=str(run.REPO / "target" / "release" / "s3-trace-relay"))
    parser.add_argument("--runtime-api", default=str(run.RuntimeApi.binary))
    parser.add_argument("--concurrency", default="1,4,8", help="comma-separated AWS_LAMBDA_MAX_CONCURRENCY values")
    args = parser.parse_args()
    run.RuntimeApi.binary = Path(args.runtime_api)
    payload, records = events.max_sqs_event()
    run.log(f"payload: {len(payload):,} bytes, {records} records")
    moto = run.Moto(str(run.REPO / ".venv" / "bin" / "python"))
    rows = []
    try:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            env = {
                "AWS_LAMBDA_MAX_CONCURRENCY": str(concurrency),
                # moto serves one call at a time: with several 6 MiB batches in flight a call can
                # wait for seconds, which SQS would not make it do. Memory is what is measured here.
                "RELAY_ATTEMPT_TIMEOUT_MS": "120000",
            }
            side = run.Side("rust", [args.binary], run.REPO, env)
            moto.reset()
            kib, seconds = peak_rss(side, moto, payload, concurrency)
            run.log(f"concurrency {concurrency}: peak RSS {kib / 1024:.1f} MiB in {seconds:.1f} s")
            rows.append((concurrency, kib, seconds))
    finally:
        moto.stop()
    print("| AWS_LAMBDA_MAX_CONCURRENCY | 6 MiB batches in flight | peak RSS (VmHWM) | per concurrent invocation | wall time |")
    print("| --- | --- | --- | --- | --- |")
    for concurrency, kib, seconds in rows:
        print(
            f"| {concurrency} | {concurrency} | {kib / 1024:.1f} MiB | {kib / 1024 / concurrency:.1f} MiB | {seconds:.1f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
