"""Self-check of scripts/moto_server.py (moto 5.2.5 server mode + relay patches).

Run: .venv/bin/python -m unittest tests/moto/test_moto_server.py   (after scripts/bootstrap.sh)
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "scripts" / "moto_server.py"
READY_RE = re.compile(r"^READY (http://127\.0\.0\.1:(\d+))$")

TRACE_A = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACE_B = "Root=1-6a1b2c3d-00112233445566778899aabb;Parent=0123456789abcdef;Sampled=0"
TRACE_SNS = "Root=1-67891233-abcdef012345678912345678;Parent=fedcba9876543210;Sampled=1"
TRACE_HTTP = "Root=1-7a7b7c7d-0f0e0d0c0b0a090807060504;Parent=1111222233334444;Sampled=1"
ROLE_ARN = "arn:aws:iam::123456789012:role/relay-test"
PASS_DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
EVENT_KEYS = {"id", "time", "version", "detail-type", "source", "region", "resources", "detail"}


class Server:
    """The launcher as a child process with a piped stdin, as a test harness would run it."""

    def __init__(self, *extra_args: str, ready_timeout: float = 30.0) -> None:
        self.stderr = tempfile.TemporaryFile()
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", "0", *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
        )
        line = self._readline(ready_timeout)
        self.ready_seconds = time.monotonic() - started
        self.ready_line = line.rstrip("\n")
        match = READY_RE.match(self.ready_line)
        if not match:
            self.stop()
            raise AssertionError(f"bad READY line {self.ready_line!r}; stderr: {self.stderr_text()}")
        self.url = match.group(1)
        self.port = int(match.group(2))

    def _readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise AssertionError(f"no READY line within {timeout}s; stderr: {self.stderr_text()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1)
                if not chunk:
                    self.stop()
                    raise AssertionError(f"launcher exited before READY; stderr: {self.stderr_text()}")
                buf += chunk
        return buf.decode()

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def get_json(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.load(resp)

    def request(self, method: str, path: str) -> int:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return resp.status

    def calls(self) -> list[dict]:
        return self.get_json("/_relay/calls")

    def reset(self) -> None:
        self.request("POST", "/moto-api/reset")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()
        self.stderr.close()


def with_trace_header(client, operation: str, value: str) -> None:
    """Make every `operation` call of `client` carry an X-Amzn-Trace-Id HTTP header."""

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = value

    client.meta.events.register(f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", add_header)


def sqs_sys_attr(value: str) -> dict:
    return {"AWSTraceHeader": {"DataType": "String", "StringValue": value}}


class MotoServerTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.server.reset()
        self.sqs = self.server.client("sqs")
        self.sns = self.server.client("sns")
        self.events = self.server.client("events")
        self.sfn = self.server.client("stepfunctions")

    def receive_all(self, queue_url: str, **kwargs) -> list[dict]:
        """Every visible message, left visible (VisibilityTimeout=0) for the next call."""
        resp = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, **kwargs
        )
        return resp.get("Messages", [])

    # ---------------------------------------------------------------- READY line

    def test_ready_line(self) -> None:
        self.assertRegex(self.server.ready_line, READY_RE)
        self.assertNotEqual(self.server.port, 0)
        self.assertLess(self.server.ready_seconds, 20)

    # ---------------------------------------------------------------- (a) SendMessageBatch

    def test_send_message_batch_keeps_each_entry_trace_header(self) -> None:
        queue = self.sqs.create_queue(QueueName="batch")["QueueUrl"]
        resp = self.sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": "a", "MessageBody": "body-a", "MessageSystemAttributes": sqs_sys_attr(TRACE_A)},
                {"Id": "b", "MessageBody": "body-b", "MessageSystemAttributes": sqs_sys_attr(TRACE_B)},
                {"Id": "c", "MessageBody": "body-c"},
            ],
        )
        self.assertEqual(sorted(e["Id"] for e in resp["Successful"]), ["a", "b", "c"])
        self.assertEqual(resp["Failed"], [])

        expected = {"body-a": TRACE_A, "body-b": TRACE_B, "body-c": None}
        variants = {
            "MessageSystemAttributeNames=All": {"MessageSystemAttributeNames": ["All"]},
            "MessageSystemAttributeNames=AWSTraceHeader": {"MessageSystemAttributeNames": ["AWSTraceHeader"]},
            "AttributeNames=AWSTraceHeader (legacy)": {"AttributeNames": ["AWSTraceHeader"]},
            "AttributeNames=All (legacy)": {"AttributeNames": ["All"]},
        }
        for name, kwargs in variants.items():
            with self.subTest(name):
                got = {
                    m["Body"]: m.get("Attributes", {}).get("AWSTraceHeader")
                    for m in self.receive_all(queue, **kwargs)
                }
                self.assertEqual(got, expected)

        with self.subTest("not requested -> not returned"):
            for m in self.receive_all(queue):
                self.assertNotIn("AWSTraceHeader", m.get("Attributes", {}))

    def test_send_message_single_matches_batch(self) -> None:
        queue = self.sqs.create_queue(QueueName="single")["QueueUrl"]
        self.sqs.send_message(QueueUrl=queue, MessageBody="one", MessageSystemAttributes=sqs_sys_attr(TRACE_A))
        self.sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": "x", "MessageBody": "two", "MessageSystemAttributes": sqs_sys_attr(TRACE_A)}],
        )
        got = {
            m["Body"]: m["Attributes"].get("AWSTraceHeader")
            for m in self.receive_all(queue, MessageSystemAttributeNames=["AWSTraceHeader"])
        }
        self.assertEqual(got, {"one": TRACE_A, "two": TRACE_A})

    def test_send_message_batch_fifo_keeps_trace_header(self) -> None:
        queue = self.sqs.create_queue(QueueName="f.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        self.sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": "g",
                 "MessageDeduplicationId": f"d{i}", "MessageSystemAttributes": sqs_sys_attr(trace)}
                for i, trace in enumerate([TRACE_A, TRACE_B])
            ],
        )
        got = {
            m["Body"]: m["Attributes"].get("AWSTraceHeader")
            for m in self.receive_all(queue, MessageSystemAttributeNames=["All"])
        }
        self.assertEqual(got, {"m0": TRACE_A, "m1": TRACE_B})

    def test_send_message_batch_rejects_invalid_system_attribute(self) -> None:
        queue = self.sqs.create_queue(QueueName="invalid")["QueueUrl"]
        bad = {"AWSTraceHeader": {"DataType": "Blob", "StringValue": TRACE_A}}
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message_batch(
                QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "x", "MessageSystemAttributes": bad}]
            )
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(self.receive_all(queue), [])

    # ---------------------------------------------------------------- (b) SNS -> SQS

    def make_topic_with_queue(self, name: str, raw: bool) -> tuple[str, str]:
        topic = self.sns.create_topic(Name=name)["TopicArn"]
        queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true" if raw else "false"},
        )
        return topic, queue

    def test_sns_publish_batch_header_becomes_aws_trace_header(self) -> None:
        for raw in (True, False):
            with self.subTest(raw_message_delivery=raw):
                topic, queue = self.make_topic_with_queue(f"traced-{str(raw).lower()}", raw)
                sns = self.server.client("sns")
                with_trace_header(sns, "PublishBatch", TRACE_SNS)
                resp = sns.publish_batch(
                    TopicArn=topic,
                    PublishBatchRequestEntries=[
                        {"Id": "1", "Message": "first"},
                        {"Id": "2", "Message": "second"},
                    ],
                )
                self.assertEqual(len(resp["Successful"]), 2)
                msgs = self.receive_all(queue, MessageSystemAttributeNames=["All"])
                self.assertEqual(len(msgs), 2)
                bodies = []
                for m in msgs:
                    self.assertEqual(m["Attributes"].get("AWSTraceHeader"), TRACE_SNS)
                    if raw:
                        bodies.append(m["Body"])
                    else:
                        envelope = json.loads(m["Body"])
                        self.assertEqual(envelope["Type"], "Notification")
                        self.assertEqual(envelope["TopicArn"], topic)
                        for key in ("MessageId", "Timestamp"):
                            self.assertIn(key, envelope)
                        bodies.append(envelope["Message"])
                self.assertEqual(sorted(bodies), ["first", "second"])

    def test_sns_publish_header_becomes_aws_trace_header(self) -> None:
        topic, queue = self.make_topic_with_queue("single-publish", raw=True)
        sns = self.server.client("sns")
        with_trace_header(sns, "Publish", TRACE_SNS)
        sns.publish(TopicArn=topic, Message="hello")
        msgs = self.receive_all(queue, MessageSystemAttributeNames=["AWSTraceHeader"])
        self.assertEqual([(m["Body"], m["Attributes"].get("AWSTraceHeader")) for m in msgs],
                         [("hello", TRACE_SNS)])

    def test_sns_publish_without_header_sets_nothing(self) -> None:
        for raw in (True, False):
            with self.subTest(raw_message_delivery=raw):
                topic, queue = self.make_topic_with_queue(f"untraced-{str(raw).lower()}", raw)
                self.sns.publish_batch(
                    TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Message": "plain"}]
                )
                self.sns.publish(TopicArn=topic, Message="plain-single")
                msgs = self.receive_all(queue, MessageSystemAttributeNames=["All"])
                self.assertEqual(len(msgs), 2)
                for m in msgs:
                    self.assertNotIn("AWSTraceHeader", m["Attributes"])

    def test_sns_header_does_not_leak_into_later_sqs_sends(self) -> None:
        topic, queue = self.make_topic_with_queue("leak", raw=True)
        sns = self.server.client("sns")
        with_trace_header(sns, "PublishBatch", TRACE_SNS)
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Message": "via-sns"}])
        self.sqs.send_message(QueueUrl=queue, MessageBody="direct")
        self.sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "direct-batch"}])
        got = {
            m["Body"]: m["Attributes"].get("AWSTraceHeader")
            for m in self.receive_all(queue, MessageSystemAttributeNames=["All"])
        }
        self.assertEqual(got, {"via-sns": TRACE_SNS, "direct": None, "direct-batch": None})

    # ---------------------------------------------------------------- (d) EventBridge -> SQS

    def make_bus_with_queue(self, name: str, fifo: bool = False) -> tuple[str, str]:
        """A custom bus whose rule (source "relay") sends every event to a new queue."""
        bus_arn = self.events.create_event_bus(Name=name)["EventBusArn"]
        queue_name = f"{name}.fifo" if fifo else name
        attrs = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        queue = self.sqs.create_queue(QueueName=queue_name, Attributes=attrs)["QueueUrl"]
        self.route_bus_to(name, self.queue_arn(queue), fifo)
        return bus_arn, queue

    def queue_arn(self, queue: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def route_bus_to(self, bus: str, target_arn: str, fifo: bool = False) -> None:
        self.events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["relay"]}))
        target = {"Id": "t", "Arn": target_arn}
        if fifo:
            target["SqsParameters"] = {"MessageGroupId": "g"}
        self.events.put_targets(Rule="all", EventBusName=bus, Targets=[target])

    @staticmethod
    def entry(bus: str, n: int, trace: str | None = None) -> dict:
        e = {"Source": "relay", "DetailType": "Object Created", "Detail": json.dumps({"n": n}),
             "EventBusName": bus}
        if trace is not None:
            e["TraceHeader"] = trace
        return e

    def delivered(self, queue: str) -> dict:
        """{detail n: AWSTraceHeader or None} of every message in the queue."""
        return {
            json.loads(m["Body"])["detail"]["n"]: m["Attributes"].get("AWSTraceHeader")
            for m in self.receive_all(queue, MessageSystemAttributeNames=["All"])
        }

    def test_put_events_trace_header_becomes_aws_trace_header(self) -> None:
        bus_arn, queue = self.make_bus_with_queue("traced-bus")
        resp = self.events.put_events(Entries=[
            self.entry("traced-bus", 1, TRACE_A),
            self.entry(bus_arn, 2, TRACE_B),
            self.entry("traced-bus", 3),
        ])
        self.assertEqual(resp["FailedEntryCount"], 0)
        event_ids = [e["EventId"] for e in resp["Entries"]]
        self.assertEqual(len(event_ids), 3)

        msgs = self.receive_all(queue, MessageSystemAttributeNames=["All"])
        self.assertEqual(len(msgs), 3)
        by_n = {}
        for m in msgs:
            event = json.loads(m["Body"])
            # moto's envelope: detail is the parsed Detail; no "account" (AWS has one); no trace.
            self.assertEqual(set(event), EVENT_KEYS)
            self.assertEqual((event["source"], event["detail-type"], event["version"], event["region"]),
                             ("relay", "Object Created", "0", "us-east-1"))
            self.assertRegex(event["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertNotIn("Root=", m["Body"])
            by_n[event["detail"]["n"]] = (event["id"], m["Attributes"].get("AWSTraceHeader"))
        self.assertEqual(
            by_n, {1: (event_ids[0], TRACE_A), 2: (event_ids[1], TRACE_B), 3: (event_ids[2], None)}
        )

    def test_put_events_http_header_is_the_fallback(self) -> None:
        _, queue = self.make_bus_with_queue("http-bus")
        events = self.server.client("events")
        with_trace_header(events, "PutEvents", TRACE_HTTP)
        events.put_events(Entries=[self.entry("http-bus", 1, TRACE_A), self.entry("http-bus", 2)])
        self.assertEqual(self.delivered(queue), {1: TRACE_A, 2: TRACE_HTTP})

    def test_put_events_without_trace_sets_nothing_and_does_not_leak(self) -> None:
        _, queue = self.make_bus_with_queue("plain-bus")
        self.events.put_events(Entries=[self.entry("plain-bus", 1)])
        self.events.put_events(Entries=[self.entry("plain-bus", 2, TRACE_A)])
        self.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"detail": {"n": 3}}))
        self.sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": "x", "MessageBody": json.dumps({"detail": {"n": 4}})}]
        )
        self.assertEqual(self.delivered(queue), {1: None, 2: TRACE_A, 3: None, 4: None})

    def test_put_events_fifo_and_bus_to_bus_targets_carry_trace_header(self) -> None:
        with self.subTest("FIFO queue target"):
            _, queue = self.make_bus_with_queue("fifo-bus", fifo=True)
            self.events.put_events(
                Entries=[self.entry("fifo-bus", 1, TRACE_A), self.entry("fifo-bus", 2, TRACE_B)]
            )
            self.assertEqual(self.delivered(queue), {1: TRACE_A, 2: TRACE_B})
        with self.subTest("bus -> bus -> queue"):
            _, queue = self.make_bus_with_queue("inner-bus")
            outer_arn = self.events.create_event_bus(Name="outer-bus")["EventBusArn"]
            self.route_bus_to("outer-bus", outer_arn.replace("outer-bus", "inner-bus"))
            self.events.put_events(Entries=[self.entry("outer-bus", 1, TRACE_A), self.entry("outer-bus", 2)])
            self.assertEqual(self.delivered(queue), {1: TRACE_A, 2: None})

    def test_put_events_missing_bus_fails_whole_call(self) -> None:
        bus_arn, queue = self.make_bus_with_queue("real-bus")
        missing_arn = bus_arn.replace("real-bus", "no-such-bus")
        for name in ("no-such-bus", missing_arn):
            with self.subTest(bus=name):
                with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                    self.events.put_events(Entries=[self.entry(name, 9, TRACE_A)])
                err = ctx.exception.response
                self.assertEqual(err["Error"]["Code"], "ResourceNotFoundException")
                self.assertEqual(err["Error"]["Message"], "Event bus no-such-bus does not exist.")
                self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 400)
                self.assertNotIn("FailedEntryCount", err)
        with self.subTest("entries before the missing bus are delivered anyway"):
            with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                self.events.put_events(Entries=[
                    self.entry("real-bus", 1, TRACE_A), self.entry("no-such-bus", 2), self.entry("real-bus", 3),
                ])
            self.assertEqual(ctx.exception.response["Error"]["Code"], "ResourceNotFoundException")
            self.assertEqual(self.delivered(queue), {1: TRACE_A})

    def test_describe_event_bus(self) -> None:
        bus_arn = self.events.create_event_bus(Name="described")["EventBusArn"]
        for name in ("described", bus_arn):
            with self.subTest(name=name):
                resp = self.events.describe_event_bus(Name=name)
                self.assertEqual((resp["Name"], resp["Arn"]), ("described", bus_arn))
        for name in ("missing-bus", bus_arn.replace("described", "missing-bus")):
            with self.subTest(name=name):
                with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                    self.events.describe_event_bus(Name=name)
                self.assertEqual(ctx.exception.response["Error"]["Code"], "ResourceNotFoundException")
                self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)

    def test_put_events_entry_checks(self) -> None:
        self.events.create_event_bus(Name="checks")
        resp = self.events.put_events(Entries=[
            {"Source": "relay", "DetailType": "t", "Detail": "not json", "EventBusName": "checks"},
            {"Source": "relay", "DetailType": "t" * 200, "Detail": "{}", "EventBusName": "checks"},
            {"Source": "aws.s3", "DetailType": "t", "Detail": "{}", "EventBusName": "checks"},
            {"DetailType": "t", "Detail": "{}", "EventBusName": "checks"},
        ])
        self.assertEqual(resp["FailedEntryCount"], 2)
        self.assertEqual(
            [e.get("ErrorCode") for e in resp["Entries"]],
            ["MalformedDetail", None, None, "InvalidArgument"],
        )
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.events.put_events(Entries=[self.entry("checks", i) for i in range(11)])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationException")

    # ---------------------------------------------------------------- Step Functions (moto as is)

    def test_start_execution_same_name(self) -> None:
        for sm_type in ("STANDARD", "EXPRESS"):
            with self.subTest(type=sm_type):
                sm = self.sfn.create_state_machine(
                    name=f"sm-{sm_type.lower()}", definition=PASS_DEFINITION, roleArn=ROLE_ARN, type=sm_type
                )["stateMachineArn"]
                start = functools.partial(self.sfn.start_execution, stateMachineArn=sm, name="run-1")
                first = start(input='{"a": 1}', traceHeader=TRACE_A)
                self.assertEqual(first["executionArn"], sm.replace(":stateMachine:", ":execution:") + ":run-1")
                again = start(input='{"a": 1}', traceHeader=TRACE_B)  # same input: idempotent
                self.assertEqual((again["executionArn"], again["startDate"]),
                                 (first["executionArn"], first["startDate"]))
                with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                    start(input='{"a": 2}')
                self.assertEqual(ctx.exception.response["Error"]["Code"], "ExecutionAlreadyExists")
                described = self.sfn.describe_execution(executionArn=first["executionArn"])
                self.assertEqual((described["status"], described["input"]), ("RUNNING", '{"a": 1}'))
                self.assertNotIn("traceHeader", described)  # moto drops it; the call log has it
                self.assertEqual(len(self.sfn.list_executions(stateMachineArn=sm)["executions"]), 1)

    # ---------------------------------------------------------------- (c) call log

    def test_call_log_records_and_reset_clears(self) -> None:
        self.assertEqual(self.server.calls(), [])
        sqs = self.server.client("sqs")
        sns = self.server.client("sns")
        with_trace_header(sqs, "SendMessageBatch", TRACE_A)
        with_trace_header(sns, "PublishBatch", TRACE_SNS)

        queue = sqs.create_queue(QueueName="logged")["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)],
        )
        topic = sns.create_topic(Name="logged")["TopicArn"]
        sns.publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[{"Id": str(i), "Message": f"n{i}"} for i in range(2)],
        )
        with self.assertRaises(botocore.exceptions.ClientError):
            sns.publish_batch(
                TopicArn=topic + "-missing", PublishBatchRequestEntries=[{"Id": "1", "Message": "x"}]
            )

        self.assertEqual(
            self.server.calls(),
            [
                {"seq": 1, "service": "sqs", "operation": "CreateQueue", "trace_header": None,
                 "target": None, "entries": None, "status": 200, "entry_trace_headers": None},
                {"seq": 2, "service": "sqs", "operation": "SendMessageBatch", "trace_header": TRACE_A,
                 "target": queue, "entries": 3, "status": 200, "entry_trace_headers": None},
                {"seq": 3, "service": "sns", "operation": "CreateTopic", "trace_header": None,
                 "target": None, "entries": None, "status": 200, "entry_trace_headers": None},
                {"seq": 4, "service": "sns", "operation": "PublishBatch", "trace_header": TRACE_SNS,
                 "target": topic, "entries": 2, "status": 200, "entry_trace_headers": None},
                {"seq": 5, "service": "sns", "operation": "PublishBatch", "trace_header": TRACE_SNS,
                 "target": topic + "-missing", "entries": 1, "status": 404, "entry_trace_headers": None},
            ],
        )

        self.server.reset()
        self.assertEqual(self.server.calls(), [])
        self.sqs.list_queues()
        self.assertEqual([(c["seq"], c["operation"]) for c in self.server.calls()], [(1, "ListQueues")])
        self.assertEqual(self.server.request("DELETE", "/_relay/calls"), 200)
        self.assertEqual(self.server.calls(), [])

    def test_call_log_records_eventbridge_and_stepfunctions(self) -> None:
        bus_arn = self.events.create_event_bus(Name="logged-bus")["EventBusArn"]
        sm = self.sfn.create_state_machine(name="logged-sm", definition=PASS_DEFINITION, roleArn=ROLE_ARN)[
            "stateMachineArn"
        ]
        self.server.request("DELETE", "/_relay/calls")

        events = self.server.client("events")
        with_trace_header(events, "PutEvents", TRACE_HTTP)
        self.events.describe_event_bus(Name="logged-bus")
        self.events.describe_event_bus(Name=bus_arn)
        events.put_events(Entries=[
            self.entry(bus_arn, 1, TRACE_A), self.entry(bus_arn, 2), self.entry(bus_arn, 3, TRACE_B),
        ])
        self.events.put_events(Entries=[{"Source": "relay", "DetailType": "t", "Detail": "{}"}])
        with self.assertRaises(botocore.exceptions.ClientError):
            self.events.put_events(Entries=[
                {"Source": "relay", "DetailType": "t", "Detail": "{}", "EventBusName": "missing-bus",
                 "TraceHeader": TRACE_B},
            ])
        with self.assertRaises(botocore.exceptions.ClientError):
            self.events.describe_event_bus(Name="missing-bus")
        self.sfn.start_execution(stateMachineArn=sm, name="e1", input="{}", traceHeader=TRACE_A)
        with self.assertRaises(botocore.exceptions.ClientError):
            self.sfn.start_execution(stateMachineArn=sm, name="e1", input='{"other": 1}')

        def call(seq, service, operation, target, status, entries=None, traces=None, http=None):
            return {"seq": seq, "service": service, "operation": operation, "trace_header": http,
                    "target": target, "entries": entries, "status": status, "entry_trace_headers": traces}

        self.assertEqual(
            self.server.calls(),
            [
                call(1, "events", "DescribeEventBus", "logged-bus", 200),
                call(2, "events", "DescribeEventBus", bus_arn, 200),
                call(3, "events", "PutEvents", bus_arn, 200, 3, [TRACE_A, None, TRACE_B], TRACE_HTTP),
                call(4, "events", "PutEvents", None, 200, 1, [None]),
                call(5, "events", "PutEvents", "missing-bus", 400, 1, [TRACE_B]),
                call(6, "events", "DescribeEventBus", "missing-bus", 400),
                call(7, "stepfunctions", "StartExecution", sm, 200, None, [TRACE_A]),
                call(8, "stepfunctions", "StartExecution", sm, 400, None, [None]),
            ],
        )

    def test_reset_clears_moto_state(self) -> None:
        self.sqs.create_queue(QueueName="gone-after-reset")
        self.server.reset()
        self.assertEqual(self.sqs.list_queues().get("QueueUrls", []), [])


class LifecycleTest(unittest.TestCase):
    def test_stdin_eof_stops_server(self) -> None:
        server = Server()
        try:
            server.proc.stdin.close()
            self.assertEqual(server.proc.wait(timeout=5), 0)
        finally:
            server.stop()

    def test_sigterm_stops_server(self) -> None:
        server = Server()
        try:
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(server.proc.wait(timeout=5), 0)
        finally:
            server.stop()

    def test_no_stdin_watch_survives_eof(self) -> None:
        server = Server("--no-stdin-watch")
        try:
            server.proc.stdin.close()
            time.sleep(1.5)
            self.assertIsNone(server.proc.poll())
            self.assertEqual(server.calls(), [])
        finally:
            server.stop()

    def test_refuses_other_moto_version(self) -> None:
        spec = importlib.util.spec_from_file_location("moto_server_under_test", LAUNCHER)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.MOTO_VERSION = "0.0.0"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(module.main([]), 2)
        self.assertIn("needs moto==0.0.0", err.getvalue())


if __name__ == "__main__":
    unittest.main()
