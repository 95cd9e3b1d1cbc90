"""Local AWS stand-in for the relay's tests: moto server mode plus three fixes and a call log.

Serves SQS, SNS, EventBridge and Step Functions (as moto 5.2.5 does) to the relay's tests.

Usage:
    .venv/bin/python scripts/moto_server.py [--host 127.0.0.1] [--port 0]
                                            [--no-stdin-watch] [--log-requests]

Prints exactly one line, ``READY http://<host>:<port>``, on stdout once the server answers
HTTP, then nothing more on stdout. Exits (status 0) on SIGTERM/SIGINT and, unless
``--no-stdin-watch`` is given, when its stdin reaches EOF: a test harness that spawns it
with a piped stdin takes it down just by dying. (Started with stdin at /dev/null, e.g. in
the background of a CI script, it would exit at once: pass ``--no-stdin-watch`` there.)

Pinned to moto 5.2.5 (scripts/requirements.txt); refuses to start with any other
version, because the patches below wrap moto internals of that version.

Patches (moto gaps as listed in shared/AWS-NOTES.md, "Local stand-ins" and "Other targets
that take a trace header"):

a. SQS ``SendMessageBatch`` per-entry ``MessageSystemAttributes``.
   AWS: ``AWSTraceHeader`` is SQS's only message system attribute; a batch entry may
   carry its own (``{"AWSTraceHeader": {"DataType": "String", "StringValue": ...}}``),
   and that is the only way for messages of one batch to have different trace
   contexts; ``ReceiveMessage`` returns it in ``Attributes.AWSTraceHeader``.
   moto 5.2.5: single ``SendMessage`` stores it (``SQSBackend.send_message(...,
   system_attributes=...)``) and ``ReceiveMessage`` returns it, but
   ``SQSBackend.send_message_batch`` calls ``send_message`` without it, so the
   attribute is dropped. Fix: ``send_message_batch`` validates each entry's
   ``MessageSystemAttributes`` like ``SendMessage`` does and hands them, in entry
   order, to its per-entry ``send_message`` calls (thread-local hand-over, so the
   attribute is on the message before it is added to the queue).

b. SNS ``Publish``/``PublishBatch`` request header ``X-Amzn-Trace-Id`` -> SQS subscribers.
   AWS: SNS has no message system attribute; the only trace carrier is the HTTP
   header of the publish request, one context per request, and with ``TracingConfig``
   PassThrough (the default) SNS forwards it to subscriptions; that an SQS subscriber's
   message then carries it as ``AWSTraceHeader`` is reported by users, not stated by
   AWS documentation. moto 5.2.5 ignores the header. Fix: while moto serves an SNS
   ``Publish``/``PublishBatch`` request that carries the header, every message moto
   delivers to a subscribed SQS queue (raw or enveloped) gets
   ``AWSTraceHeader`` = that header value. Without the header nothing is set.

c. Call log (not a moto gap, a test aid): a WSGI middleware records every SQS, SNS,
   EventBridge and Step Functions API request, in arrival order, as
   ``{"seq": n, "service": "sqs"|"sns"|"events"|"stepfunctions", "operation": "PutEvents",
   "trace_header": <X-Amzn-Trace-Id or null>, "target": <see below or null>,
   "entries": <batch entry count or null>, "status": <HTTP status or null>,
   "entry_trace_headers": <list or null>}`` (seq starts at 1). ``GET /_relay/calls`` returns
   the list as JSON; ``POST /moto-api/reset`` (moto's own reset) and ``DELETE /_relay/calls``
   clear it. Recognises the SQS JSON protocol (``X-Amz-Target: AmazonSQS.<Op>``, JSON body),
   the SNS query protocol (form body ``Action=<Op>&TopicArn=...``), the SQS query protocol,
   and the EventBridge / Step Functions JSON protocols (``X-Amz-Target: AWSEvents.<Op>`` /
   ``AWSStepFunctions.<Op>``).
   ``target``: SQS ``QueueUrl``; SNS ``TopicArn``/``TargetArn``; EventBridge ``PutEvents``: the
   ``EventBusName`` of the first entry as sent (name or ARN; null if the entry has none, i.e.
   the default bus), ``DescribeEventBus``/``CreateEventBus``/``UpdateEventBus``/
   ``DeleteEventBus``: ``Name``, other EventBridge operations: ``EventBusName``; Step Functions:
   ``stateMachineArn``, else ``executionArn``.
   ``entries``: SQS/SNS batch calls and ``PutEvents`` (length of ``Entries``), else null.
   ``entry_trace_headers``: ``PutEvents``: one item per entry, in order, that entry's
   ``TraceHeader`` as sent or null; ``StartExecution``/``StartSyncExecution``:
   ``[traceHeader or null]``; every other call, and all SQS/SNS calls: null (not recorded).
   ``trace_header`` stays the HTTP header, for every service.

d. EventBridge ``PutEvents`` trace header -> ``AWSTraceHeader`` on SQS targets.
   AWS (EventBridge user guide, "EventBridge integration with X-Ray"): "EventBridge passes the
   original trace header to the target"; the carrier is the entry's ``TraceHeader``, else the
   request's ``X-Amzn-Trace-Id`` (the entry's overrides it); the header is not in the event
   body delivered to the target; a DLQ message gets it as an SQS message attribute. That an
   SQS *target* gets it as ``AWSTraceHeader`` is inferred from that, not stated. AWS drops
   trace headers X-Ray finds invalid; this patch does not validate.
   moto 5.2.5 ignores both carriers. Fix: while moto delivers an entry's event to the rules
   of its bus, every message it sends to an SQS target (standard or FIFO, also through a
   bus-to-bus target) gets ``AWSTraceHeader`` = the entry's ``TraceHeader``, else the request
   header; with neither, nothing is set. Done by handing ``EventsBackend.put_events`` one
   entry at a time (moto treats entries one by one anyway: same results, same deliveries,
   same whole-call error at the same entry); a call of more than 10 entries goes through
   unchanged and is refused as before. The stored target message body is moto's own.

e. What moto 5.2.5 does with the relay's EventBridge / Step Functions calls (checked with
   boto3 against this server, patches on; "AWS" notes are from shared/AWS-NOTES.md and the
   AWS documentation):

   - ``PutEvents`` with ``TraceHeader``: accepted, neither stored nor returned; not in the
     delivered event body (as on AWS); unpatched, SQS targets get no ``AWSTraceHeader``
     (fixed by d.). Visible in the call log (``entry_trace_headers``).
   - ``PutEvents`` to a bus that does not exist (name or ARN): HTTP 400, whole-call
     ``ResourceNotFoundException`` "Event bus <name> does not exist.", no ``FailedEntryCount``
     (AWS is reported to answer 200, ``FailedEntryCount: 0``, event ids: AWS-NOTES). Entries
     before the first one naming a missing bus have already been delivered to their targets
     when the error is returned.
   - ``DescribeEventBus`` of a missing bus (name or ARN): HTTP 400
     ``ResourceNotFoundException`` "Event bus <name> does not exist."; an existing one by name
     or ARN: ``Name``, ``Arn``, ``CreationTime``, ``LastModifiedTime``. A bus ARN is looked
     up by its name: its region is never compared; its account is by ``DescribeEventBus``
     (another account's ARN: not found) but not by ``PutEvents`` (same-named local bus).
   - Rule (``EventPattern``) on a custom bus with an SQS target: ``PutEvents`` delivers one SQS
     message per matching entry, synchronously (receivable when ``PutEvents`` returns). Body
     (JSON): ``{"id": <EventId>, "time": "YYYY-MM-DDTHH:MM:SSZ", "version": "0",
     "detail-type", "source", "region", "resources": [...], "detail": <Detail parsed, an
     object>}``: the envelope with ``detail`` as JSON, but without ``account`` (AWS sends it).
   - Entry checks: missing ``Source``/``DetailType``/``Detail`` -> per-entry ``InvalidArgument``,
     ``Detail`` not JSON -> per-entry ``MalformedDetail`` (``FailedEntryCount`` counts them);
     more than 10 entries -> whole-call ``ValidationException``. Not checked: ``DetailType``
     over 128 characters, ``aws.*`` sources, entry size (a 1.1 MB ``Detail``): all accepted
     with an EventId.
   - ``StartExecution`` with a name used before: same input -> HTTP 200 with the first
     execution's ``executionArn`` and ``startDate`` (idempotent); different input ->
     ``ExecutionAlreadyExists``. Executions never run (they stay ``RUNNING``; with moto's
     ``SF_EXECUTION_HISTORY_TYPE=FAILURE`` they start ``FAILED``), so AWS's "closed execution
     -> ExecutionAlreadyExists whatever the input" arises only in that mode.
     Other errors: ``StateMachineDoesNotExist``, ``InvalidExecutionInput`` (input not JSON),
     ``ValidationException`` (name over 80 characters).
   - ``StartExecution`` ``traceHeader``: accepted, not stored: ``DescribeExecution`` has no
     ``traceHeader`` (AWS returns it). Not patched: the call log shows what was sent.
   - ``EXPRESS`` state machine: ``StartExecution`` behaves exactly as for ``STANDARD``
     (``...:execution:<sm>:<name>`` ARN, same-name idempotency/``ExecutionAlreadyExists``,
     ``DescribeExecution`` answers). On AWS (Step Functions guide, "Execution guarantees";
     ``DescribeExecution`` reference) asynchronous Express workflows do not manage idempotency
     (a repeated name starts another execution) and ``DescribeExecution`` does not serve
     Express executions (unless a Map Run dispatched them).
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.metadata
import inspect
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import urllib.parse
import urllib.request

MOTO_VERSION = "5.2.5"

_local = threading.local()


# --------------------------------------------------------------------------- patches


def _system_attributes_for_send():
    """System attributes to inject into the current SQSBackend.send_message call, or None."""
    pending = getattr(_local, "batch_system_attributes", None)
    if pending is not None:
        # Inside a patched send_message_batch: one entry per send_message call, in order.
        return pending.popleft() if pending else None
    header = getattr(_local, "sns_trace_header", None) or getattr(
        _local, "events_trace_header", None
    )
    if header:
        return {"AWSTraceHeader": {"DataType": "String", "StringValue": header}}
    return None


def apply_patches() -> None:
    from moto.events.models import EventsBackend, Rule
    from moto.events.responses import EventsHandler
    from moto.sns.responses import SNSResponse
    from moto.sqs.models import SQSBackend
    from moto.sqs.utils import validate_message_attributes

    # --- shared: SQSBackend.send_message takes injected system attributes
    orig_send_message = SQSBackend.send_message
    send_sig = inspect.signature(orig_send_message)
    if "system_attributes" not in send_sig.parameters:
        raise RuntimeError("moto SQSBackend.send_message has no system_attributes parameter")

    @functools.wraps(orig_send_message)
    def send_message(*args, **kwargs):
        inject = _system_attributes_for_send()
        if inject:
            bound = send_sig.bind(*args, **kwargs)
            if not bound.arguments.get("system_attributes"):
                bound.arguments["system_attributes"] = inject
            return orig_send_message(*bound.args, **bound.kwargs)
        return orig_send_message(*args, **kwargs)

    SQSBackend.send_message = send_message

    # --- a. SendMessageBatch keeps each entry's MessageSystemAttributes
    orig_send_message_batch = SQSBackend.send_message_batch

    @functools.wraps(orig_send_message_batch)
    def send_message_batch(self, queue_name, entries):
        for entry in entries.values():
            # Same validation SQSResponse.send_message applies to MessageSystemAttributes.
            validate_message_attributes(entry.get("MessageSystemAttributes"))
        _local.batch_system_attributes = collections.deque(
            entry.get("MessageSystemAttributes") or None for entry in entries.values()
        )
        try:
            return orig_send_message_batch(self, queue_name, entries)
        finally:
            _local.batch_system_attributes = None

    SQSBackend.send_message_batch = send_message_batch

    # --- b. SNS publish header -> AWSTraceHeader on SQS deliveries
    def with_trace_header(orig):
        @functools.wraps(orig)
        def wrapper(self):
            _local.sns_trace_header = self.headers.get("X-Amzn-Trace-Id") or None
            try:
                return orig(self)
            finally:
                _local.sns_trace_header = None

        return wrapper

    SNSResponse.publish = with_trace_header(SNSResponse.publish)
    SNSResponse.publish_batch = with_trace_header(SNSResponse.publish_batch)

    # --- d. EventBridge PutEvents trace header -> AWSTraceHeader on SQS targets
    orig_put_events = EventsBackend.put_events
    if list(inspect.signature(orig_put_events).parameters) != ["self", "events"]:
        raise RuntimeError("moto EventsBackend.put_events is not put_events(self, events)")
    if not callable(getattr(Rule, "_send_to_sqs_queue", None)):
        raise RuntimeError("moto events Rule has no _send_to_sqs_queue")
    orig_handler_put_events = EventsHandler.put_events

    @functools.wraps(orig_handler_put_events)
    def handler_put_events(self):
        _local.events_http_trace_header = self.headers.get("X-Amzn-Trace-Id") or None
        try:
            return orig_handler_put_events(self)
        finally:
            _local.events_http_trace_header = None

    @functools.wraps(orig_put_events)
    def put_events(self, events):
        # Nested (a rule whose target is another bus) keeps the outer entry's header; a
        # call moto would refuse as a whole (> 10 entries) goes through unchanged.
        nested = getattr(_local, "in_put_events", False)
        if nested or not isinstance(events, list) or len(events) > 10:
            return orig_put_events(self, events)
        http_header = getattr(_local, "events_http_trace_header", None)
        results = []
        _local.in_put_events = True
        try:
            # moto handles entries one by one in order (its only whole-call step is the
            # length check above), so one entry per call returns and delivers the same.
            for event in events:
                trace = event.get("TraceHeader") if isinstance(event, dict) else None
                _local.events_trace_header = trace or http_header
                results.extend(orig_put_events(self, [event]))
        finally:
            _local.in_put_events = False
            _local.events_trace_header = None
        return results

    EventsHandler.put_events = handler_put_events
    EventsBackend.put_events = put_events


# --------------------------------------------------------------------------- call log

_TARGET_PREFIXES = {
    "AmazonSQS": "sqs",
    "AmazonSimpleNotificationService": "sns",
    "AWSEvents": "events",
    "AWSStepFunctions": "stepfunctions",
}
_EVENT_BUS_OPERATIONS = ("DescribeEventBus", "CreateEventBus", "UpdateEventBus", "DeleteEventBus")
_SFN_TRACED_OPERATIONS = ("StartExecution", "StartSyncExecution")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_ENTRY = re.compile(
    r"^(?:PublishBatchRequestEntries\.member|Entries\.member|Entries"
    r"|[A-Za-z]+BatchRequestEntry)\.(\d+)\."
)
_JSON_ENTRY_KEYS = ("Entries", "PublishBatchRequestEntries")


def _read_body(environ) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        return b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _classify_events(operation: str, params: dict):
    """(target, entries, entry_trace_headers) of an EventBridge JSON request."""
    if operation == "PutEvents":
        entries = params.get("Entries")
        if not isinstance(entries, list):
            return None, None, None
        items = [e if isinstance(e, dict) else {} for e in entries]
        target = items[0].get("EventBusName") if items else None
        return target, len(items), [e.get("TraceHeader") for e in items]
    if operation in _EVENT_BUS_OPERATIONS:
        return params.get("Name"), None, None
    return params.get("EventBusName"), None, None


def _classify_stepfunctions(operation: str, params: dict):
    """(target, entries, entry_trace_headers) of a Step Functions JSON request."""
    target = params.get("stateMachineArn") or params.get("executionArn")
    traces = [params.get("traceHeader")] if operation in _SFN_TRACED_OPERATIONS else None
    return target, None, traces


def _classify(environ, body: bytes):
    """(service, operation, target, entries, entry_trace_headers) of a logged request, or None."""
    amz_target = environ.get("HTTP_X_AMZ_TARGET", "")
    if "." in amz_target:
        prefix, operation = amz_target.split(".", 1)
        service = _TARGET_PREFIXES.get(prefix)
        if service is None:
            return None
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        if not isinstance(params, dict):
            params = {}
        if service == "events":
            return (service, operation, *_classify_events(operation, params))
        if service == "stepfunctions":
            return (service, operation, *_classify_stepfunctions(operation, params))
        target = params.get("QueueUrl") or params.get("TopicArn") or params.get("TargetArn")
        entries = None
        for key in _JSON_ENTRY_KEYS:
            if isinstance(params.get(key), list):
                entries = len(params[key])
        return service, operation, target, entries, None

    params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(
            urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        )
    operation = params.get("Action")
    if not operation:
        return None
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        service = scope.group(1)
    elif "TopicArn" in params or "TargetArn" in params:
        service = "sns"
    elif "QueueUrl" in params or "QueueName" in params:
        service = "sqs"
    else:
        return None
    if service not in ("sqs", "sns"):
        return None
    target = params.get("QueueUrl") or params.get("TopicArn") or params.get("TargetArn")
    if target is None and service == "sqs":
        # Legacy SQS query requests may address the queue by the URL path alone.
        path = environ.get("PATH_INFO", "")
        if re.fullmatch(r"/\d{12}/[\w.-]+", path):
            scheme = environ.get("wsgi.url_scheme", "http")
            target = f"{scheme}://{environ.get('HTTP_HOST', '')}{path}"
    entries = None
    if operation.endswith("Batch"):
        entries = len({m.group(1) for k in params if (m := _QUERY_ENTRY.match(k))})
    return service, operation, target, entries, None


class CallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict] = []
        self._seq = 0

    def add(
        self, service, operation, trace_header, target, entries, entry_trace_headers=None
    ) -> dict:
        with self._lock:
            self._seq += 1
            call = {
                "seq": self._seq,
                "service": service,
                "operation": operation,
                "trace_header": trace_header,
                "target": target,
                "entries": entries,
                "status": None,
                "entry_trace_headers": entry_trace_headers,
            }
            self._calls.append(call)
            return call

    def set_status(self, call: dict, status: int) -> None:
        with self._lock:
            call["status"] = status

    def clear(self) -> None:
        with self._lock:
            self._calls = []
            self._seq = 0

    def to_json(self) -> bytes:
        with self._lock:
            return json.dumps(self._calls).encode()


class RelayMiddleware:
    """WSGI middleware around moto's dispatcher: /_relay/calls and the call log."""

    def __init__(self, app, log: CallLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_relay/calls":
            if method == "DELETE":
                self.log.clear()
                return _respond(start_response, "200 OK", b'{"status": "ok"}')
            if method in ("GET", "HEAD"):
                body = self.log.to_json()
                return _respond(start_response, "200 OK", b"" if method == "HEAD" else body)
            return _respond(start_response, "405 Method Not Allowed", b'{"error": "GET or DELETE"}')
        if path == "/moto-api/reset" and method == "POST":
            self.log.clear()
            return self.app(environ, start_response)

        body = _read_body(environ)
        try:
            kind = _classify(environ, body)
        except Exception:  # never let the log break a request
            logging.getLogger("moto_server").exception("could not classify request")
            kind = None
        if kind is None:
            return self.app(environ, start_response)

        service, operation, target, entries, entry_trace_headers = kind
        call = self.log.add(
            service, operation, environ.get("HTTP_X_AMZN_TRACE_ID"), target, entries,
            entry_trace_headers,
        )

        def recording_start_response(status, headers, exc_info=None):
            try:
                self.log.set_status(call, int(status.split(" ", 1)[0]))
            except ValueError:
                pass
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, recording_start_response)


def _respond(start_response, status: str, body: bytes):
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 = pick a free one")
    parser.add_argument(
        "--no-stdin-watch", action="store_true", help="do not exit when stdin reaches EOF"
    )
    parser.add_argument(
        "--log-requests", action="store_true", help="log each request on stderr (werkzeug)"
    )
    args = parser.parse_args(argv)

    try:
        installed = importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != MOTO_VERSION:
        print(
            f"moto_server.py: error: needs moto=={MOTO_VERSION} (found {installed or 'none'}); "
            "its patches wrap moto internals of that version. Run scripts/bootstrap.sh and use "
            ".venv/bin/python.",
            file=sys.stderr,
        )
        return 2

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.ERROR)

    # The READY line is the only thing this process writes to stdout; anything moto or a
    # library might print later goes to stderr, so a harness that stops reading stdout
    # after READY can never block us on a full pipe.
    ready_out = sys.stdout
    sys.stdout = sys.stderr

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    apply_patches()

    log = CallLog()
    app = RelayMiddleware(DomainDispatcherApplication(create_backend_app), log)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)  # moto builds a few self-referencing URLs from it

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    serve = threading.Thread(target=server.serve_forever, name="moto-serve", daemon=True)
    serve.start()

    host = args.host if ":" not in args.host else f"[{args.host}]"
    probe_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else host
    if args.host == "::":
        probe_host = "[::1]"
    url = f"http://{host}:{port}"
    # Answering HTTP through the whole stack, not just listening, is what READY means.
    with urllib.request.urlopen(f"http://{probe_host}:{port}/_relay/calls", timeout=30) as resp:
        resp.read()

    if not args.no_stdin_watch:

        def watch_stdin():
            # os.read on the raw fd, not sys.stdin: a daemon thread blocked inside the
            # buffered reader aborts the interpreter at shutdown (SIGTERM path).
            try:
                fd = sys.stdin.fileno()
                while os.read(fd, 65536):
                    pass
            except (OSError, ValueError, AttributeError):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    ready_out.write(f"READY {url}\n")
    ready_out.flush()

    while not stop.wait(1.0):
        pass

    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
