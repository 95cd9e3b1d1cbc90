"""bench/peer_python with its calls made concurrently: the same plan and the same messages
(``bench/peer_python/handler.py`` is loaded and reused as is), the calls submitted to a thread
pool of ``PEER_MAX_IN_FLIGHT`` workers (default 16, the relay's default ``RELAY_MAX_IN_FLIGHT``).

What a user adds to make the sequential handler concurrent:
- a ``ThreadPoolExecutor`` created at init;
- clients whose connection pool is as large as the pool of threads (botocore's default,
  ``max_pool_connections=10``, makes the 11th+ concurrent call open a connection and throw it away
  afterwards, with a "Connection pool is full" warning);
- the SNS call's ``X-Amzn-Trace-Id`` kept per thread, not in a module global.

The base module creates its clients at import; they are created here, once, with the larger
pool, by wrapping ``boto3.client`` during that import (init makes exactly the same clients as the
sequential peer's, only configured differently).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

MAX_IN_FLIGHT = int(os.environ.get("PEER_MAX_IN_FLIGHT", "16"))

_client = boto3.client
boto3.client = lambda *a, **kw: _client(*a, config=Config(max_pool_connections=MAX_IN_FLIGHT), **kw)
try:
    # bench/peer_python/handler.py, loaded under another name (this module is "handler" too).
    _spec = importlib.util.spec_from_file_location(
        "peer_python_handler", Path(__file__).resolve().parents[2] / "peer_python" / "handler.py"
    )
    base = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(base)
finally:
    boto3.client = _client

_local = threading.local()
pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="publish")


def _set_trace_header(request, **kwargs):
    del request.headers["X-Amzn-Trace-Id"]
    header = getattr(_local, "trace", None)
    if header:
        request.headers["X-Amzn-Trace-Id"] = header


base.sns.meta.events.unregister("before-sign.sns.PublishBatch", base._set_trace_header)
base.sns.meta.events.register("before-sign.sns.PublishBatch", _set_trace_header)


def send_sns(topic_arn, trace, batch):
    entries = [
        {"Id": str(i), "Message": m["body"], "MessageAttributes": base._attributes(m)} for i, m in enumerate(batch)
    ]
    _local.trace = trace
    try:
        response = base.sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
    finally:
        _local.trace = None
    return [batch[int(f["Id"])] for f in response.get("Failed", [])]


def _call(target, trace, batch):
    try:
        if target.startswith("arn:aws:sns:"):
            return send_sns(target, trace, batch)
        return base.send_sqs(target, batch)
    except Exception as e:  # the whole call failed: all its records
        print(f"publish to {target} failed: {e}")
        return batch


def lambda_handler(event, context):
    invocation_trace = base.parse_trace_header(os.environ.get("_X_AMZN_TRACE_ID"))
    batches, from_sqs = base.plan(event, invocation_trace)
    futures = [
        pool.submit(_call, target, trace, batch) for target, calls in batches.items() for trace, batch in calls
    ]
    failed = [m for f in futures for m in f.result()]
    if from_sqs:
        ids = dict.fromkeys(m["message_id"] for m in failed)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}
    if failed:
        raise RuntimeError(f"{len(failed)} messages not delivered")
    return {"batchItemFailures": []}
