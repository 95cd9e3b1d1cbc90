"""Invocation payloads for the benchmark, the same shapes as benches/pipeline.rs builds.

- ``direct_event()``: an S3 notification as S3 delivers it to Lambda (one record);
- ``sqs_event(n, k)``: an SQS event of ``n`` messages, each an S3 notification holding one record,
  with ``k`` distinct ``AWSTraceHeader`` contexts (message ``i`` has context ``i % k``);
- ``max_sqs_event(k)``: the largest such SQS event that fits Lambda's 6 MiB payload limit.

Payloads are compact JSON (no spaces), as the Lambda service sends them.
"""

from __future__ import annotations

import json

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:relay-source"
INVOCATION_TRACE = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1"


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def record_trace(i: int, k: int) -> str:
    """The AWSTraceHeader of SQS message ``i``: one of ``k`` contexts (as benches/pipeline.rs)."""
    c = i % k
    return f"Root=1-6745a1b2-{c:024x};Parent={c + 1:016x};Sampled=1"


def s3_record(i: int, padding: int = 0) -> dict:
    """One S3 record as S3 writes it; the key is URL-encoded (``+`` for space). ``padding`` adds
    that many bytes in ``requestParameters`` (forwarded unchanged), to exercise byte limits."""
    request_parameters = {"sourceIPAddress": "203.0.113.10"}
    if padding:
        request_parameters["padding"] = "x" * padding
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUPLOADER"},
        "requestParameters": request_parameters,
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "relay",
            "bucket": {
                "name": "relay-bench-uploads",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::relay-bench-uploads",
            },
            "object": {
                "key": f"uploads/{i:06}/holiday+photo+{i}.jpg",
                "size": 1024,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": f"0062E99A88DC{i:06X}",
            },
        },
    }


def sqs_record(i: int, k: int = 3, padding: int = 0) -> dict:
    return {
        "messageId": f"00000000-0000-4000-8000-{i:012}",
        "receiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{i:08}",
        "body": dumps({"Records": [s3_record(i, padding)]}),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764072000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1764072000010",
            "AWSTraceHeader": record_trace(i, k),
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": SOURCE_ARN,
        "awsRegion": "us-east-1",
    }


def direct_event() -> bytes:
    return dumps({"Records": [s3_record(0)]}).encode()


def sqs_event(n: int, k: int = 3, padding: int = 0) -> bytes:
    return dumps({"Records": [sqs_record(i, k, padding) for i in range(n)]}).encode()


def max_sqs_event(k: int = 3) -> tuple[bytes, int]:
    """The largest SQS event within MAX_PAYLOAD_BYTES, and its number of records."""
    parts = ['{"Records":[']
    size = len(parts[0])
    n = 0
    while True:
        r = dumps(sqs_record(n, k))
        # Room for this record, a separating comma and the closing "]}".
        if size + len(r) + 1 + 2 > MAX_PAYLOAD_BYTES:
            break
        if n:
            parts.append(",")
            size += 1
        parts.append(r)
        size += len(r)
        n += 1
    parts.append("]}")
    return "".join(parts).encode(), n
