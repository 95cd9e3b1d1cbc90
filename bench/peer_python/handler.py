"""The S3 trace relay written the way most users would: Python 3, boto3, the managed runtime.

The benchmark's peer for the Rust relay. It does the same job on the same inputs:

- decodes S3 notifications delivered directly by S3, wrapped in SQS messages (also SNS-enveloped
  bodies) and wrapped in SNS notifications;
- takes each SQS record's trace context from its ``AWSTraceHeader`` attribute, else the
  invocation's (``_X_AMZN_TRACE_ID``, which the runtime client sets per invocation);
- sends one message per record to every target in ``RELAY_TARGETS`` (SQS queue URLs, SNS topic
  ARNs): SQS with ``SendMessageBatch`` (10 entries / 1 MiB per call), each entry carrying the
  ``AWSTraceHeader`` system attribute and a ``traceparent`` message attribute; SNS with
  ``PublishBatch`` (10 entries / 256 KiB per call) grouped by trace context, each call carrying
  its group's ``X-Amzn-Trace-Id`` header;
- reports failed SQS records in ``batchItemFailures``; raises for other sources.

Idiomatic rather than tuned: clients are created once at import (module scope, so init pays for
them, as AWS recommends), calls are made one after another, records are re-serialised with
``json.dumps``. ``plan()`` is the pure half (no network), timed by the benchmark on its own.
"""

from __future__ import annotations

import json
import os
import re

import boto3

SQS_MAX_BYTES = 1024 * 1024
SNS_MAX_BYTES = 256 * 1024
MAX_ENTRIES = 10

sqs = boto3.client("sqs")
sns = boto3.client("sns")
TARGETS = [t.strip() for t in os.environ["RELAY_TARGETS"].split(",") if t.strip()]

_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_ROOT = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")

# The X-Amzn-Trace-Id header of the PublishBatch call being made (botocore has no per-call
# header argument; an event hook is the usual way).
_sns_trace_header = None


def _set_trace_header(request, **kwargs):
    del request.headers["X-Amzn-Trace-Id"]
    if _sns_trace_header:
        request.headers["X-Amzn-Trace-Id"] = _sns_trace_header


sns.meta.events.register("before-sign.sns.PublishBatch", _set_trace_header)


def parse_trace_header(value):
    """Canonical ``Root=...;Parent=...;Sampled=...`` from an X-Ray header, or None if invalid."""
    if not value:
        return None
    fields = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
    root = fields.get("root", "").lower()
    if not _ROOT.match(root):
        return None
    header = f"Root={root}"
    parent = fields.get("parent", "").lower()
    if _HEX16.match(parent):
        header += f";Parent={parent}"
    if fields.get("sampled") in ("0", "1", "?"):
        header += f";Sampled={fields['sampled']}"
    return header


def traceparent(header):
    """The W3C form of a canonical X-Ray header (needs a Parent), or None."""
    if not header:
        return None
    fields = dict(part.split("=", 1) for part in header.split(";"))
    if "Parent" not in fields:
        return None
    _, epoch, unique = fields["Root"].split("-")
    flags = "01" if fields.get("Sampled") == "1" else "00"
    return f"00-{epoch}{unique}-{fields['Parent']}-{flags}"


def _s3_records(document):
    if document.get("Type") == "Notification" and "Message" in document:  # SNS envelope
        document = json.loads(document["Message"])
    return [r for r in document.get("Records", []) if r.get("eventSource") == "aws:s3"]


def decode(event, invocation_trace):
    """[(sqs message id or None, S3 record, trace header or None)], and whether it came from SQS."""
    records = event.get("Records") or []
    from_sqs = bool(records) and records[0].get("eventSource") == "aws:sqs"
    out = []
    for record in records:
        source = record.get("eventSource") or record.get("EventSource")
        if source == "aws:sqs":
            header = parse_trace_header(record.get("attributes", {}).get("AWSTraceHeader"))
            for s3_record in _s3_records(json.loads(record["body"])):
                out.append((record["messageId"], s3_record, header or invocation_trace))
        elif source == "aws:sns":
            for s3_record in _s3_records(json.loads(record["Sns"]["Message"])):
                out.append((None, s3_record, invocation_trace))
        elif source == "aws:s3":
            out.append((None, record, invocation_trace))
    return out, from_sqs


def _chunks(messages, max_bytes):
    batch, size = [], 0
    for m in messages:
        if batch and (len(batch) == MAX_ENTRIES or size + m["size"] > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(m)
        size += m["size"]
    if batch:
        yield batch


def plan(event, invocation_trace):
    """{target: [(trace header for the call or None, [message, ...]), ...]} and whether from SQS."""
    decoded, from_sqs = decode(event, invocation_trace)
    messages = []
    for message_id, record, header in decoded:
        body = json.dumps({"Records": [record]})
        tp = traceparent(header)
        size = len(body.encode()) + (len("traceparent") + len("String") + len(tp) if tp else 0)
        messages.append(
            {"message_id": message_id, "body": body, "trace": header, "traceparent": tp, "size": size}
        )
    batches = {}
    for target in TARGETS:
        if target.startswith("arn:aws:sns:"):
            groups = {}
            for m in messages:
                groups.setdefault(m["trace"], []).append(m)
            batches[target] = [
                (trace, batch) for trace, group in groups.items() for batch in _chunks(group, SNS_MAX_BYTES)
            ]
        else:
            batches[target] = [(None, batch) for batch in _chunks(messages, SQS_MAX_BYTES)]
    return batches, from_sqs


def _attributes(m):
    if not m["traceparent"]:
        return {}
    return {"traceparent": {"DataType": "String", "StringValue": m["traceparent"]}}


def send_sqs(queue_url, batch):
    entries = []
    for i, m in enumerate(batch):
        entry = {"Id": str(i), "MessageBody": m["body"], "MessageAttributes": _attributes(m)}
        if m["trace"]:
            entry["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": m["trace"]}
            }
        entries.append(entry)
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return [batch[int(f["Id"])] for f in response.get("Failed", [])]


def send_sns(topic_arn, trace, batch):
    global _sns_trace_header
    entries = [
        {"Id": str(i), "Message": m["body"], "MessageAttributes": _attributes(m)} for i, m in enumerate(batch)
    ]
    _sns_trace_header = trace
    try:
        response = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
    finally:
        _sns_trace_header = None
    return [batch[int(f["Id"])] for f in response.get("Failed", [])]


def lambda_handler(event, context):
    invocation_trace = parse_trace_header(os.environ.get("_X_AMZN_TRACE_ID"))
    batches, from_sqs = plan(event, invocation_trace)
    failed = []
    for target, calls in batches.items():
        for trace, batch in calls:
            try:
                if target.startswith("arn:aws:sns:"):
                    failed += send_sns(target, trace, batch)
                else:
                    failed += send_sqs(target, batch)
            except Exception as e:  # the whole call failed: all its records
                print(f"publish to {target} failed: {e}")
                failed += batch
    if from_sqs:
        ids = dict.fromkeys(m["message_id"] for m in failed)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}
    if failed:
        raise RuntimeError(f"{len(failed)} messages not delivered")
    return {"batchItemFailures": []}
