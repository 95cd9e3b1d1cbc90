// The S3 trace relay written the way most Node.js users would: AWS SDK for JavaScript v3 (pinned in
// package.json / package-lock.json), clients created once at init, the Lambda Runtime API served by
// a plain fetch() loop (what the managed nodejs runtime does for a handler; no extra dependency).
//
// Same job and same messages as the Rust relay and bench/peer_python, for SQS-wrapped S3 events:
// per S3 record one SQS entry (AWSTraceHeader system attribute = the record's trace context,
// traceparent message attribute) per queue, and one SNS entry per topic; SendMessageBatch of
// <= 10 entries / 1 MiB, PublishBatch of <= 10 entries / 256 KiB grouped by trace context, each
// call carrying its group's X-Amzn-Trace-Id header (SNS takes the trace only from the header).
//
// PEER_MODE=sequential: one call after another. PEER_MODE=all (default): every call at once
// (Promise.all); the SDK's default HTTP handler then caps each client at 50 sockets.
//
//   AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 RELAY_TARGETS=... node index.js
"use strict";

const { SQSClient, SendMessageBatchCommand } = require("@aws-sdk/client-sqs");
const { SNSClient, PublishBatchCommand } = require("@aws-sdk/client-sns");

const SQS_MAX_BYTES = 1024 * 1024;
const SNS_MAX_BYTES = 256 * 1024;
const MAX_ENTRIES = 10;
const MODE = process.env.PEER_MODE || "all";
if (MODE !== "all" && MODE !== "sequential") {
  throw new Error(`PEER_MODE=${MODE}: expected all or sequential`);
}
const TARGETS = (process.env.RELAY_TARGETS || "").split(",").map((t) => t.trim()).filter(Boolean);
if (TARGETS.length === 0) throw new Error("RELAY_TARGETS is empty");

const sqs = new SQSClient({});
const sns = new SNSClient({});

const ROOT = /^1-[0-9a-f]{8}-[0-9a-f]{24}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/** Canonical Root=...;Parent=...;Sampled=... from an X-Ray header, or null if invalid. */
function parseTraceHeader(value) {
  if (!value) return null;
  const fields = {};
  for (const part of value.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) fields[part.slice(0, at).trim().toLowerCase()] = part.slice(at + 1).trim();
  }
  const root = (fields.root || "").toLowerCase();
  if (!ROOT.test(root)) return null;
  let header = `Root=${root}`;
  const parent = (fields.parent || "").toLowerCase();
  if (HEX16.test(parent)) header += `;Parent=${parent}`;
  if (["0", "1", "?"].includes(fields.sampled)) header += `;Sampled=${fields.sampled}`;
  return header;
}

/** The W3C traceparent of a canonical X-Ray header (needs a Parent), or null. */
function traceparent(header) {
  if (!header) return null;
  const f = Object.fromEntries(header.split(";").map((p) => p.split("=", 2)));
  if (!f.Parent) return null;
  const [, epoch, unique] = f.Root.split("-");
  return `00-${epoch}${unique}-${f.Parent}-${f.Sampled === "1" ? "01" : "00"}`;
}

function s3Records(document) {
  if (document.Type === "Notification" && "Message" in document) document = JSON.parse(document.Message);
  return (document.Records || []).filter((r) => r.eventSource === "aws:s3");
}

function decode(event, invocationTrace) {
  const out = [];
  const records = event.Records || [];
  const fromSqs = records.length > 0 && records[0].eventSource === "aws:sqs";
  for (const record of records) {
    const source = record.eventSource || record.EventSource;
    if (source === "aws:sqs") {
      const header = parseTraceHeader((record.attributes || {}).AWSTraceHeader);
      for (const r of s3Records(JSON.parse(record.body))) out.push([record.messageId, r, header || invocationTrace]);
    } else if (source === "aws:sns") {
      for (const r of s3Records(JSON.parse(record.Sns.Message))) out.push([null, r, invocationTrace]);
    } else if (source === "aws:s3") {
      out.push([null, record, invocationTrace]);
    }
  }
  return { decoded: out, fromSqs };
}

function* chunks(messages, maxBytes) {
  let batch = [];
  let size = 0;
  for (const m of messages) {
    if (batch.length && (batch.length === MAX_ENTRIES || size + m.size > maxBytes)) {
      yield batch;
      batch = [];
      size = 0;
    }
    batch.push(m);
    size += m.size;
  }
  if (batch.length) yield batch;
}

/** Every call to make: [{target, trace, batch}]. */
function plan(event, invocationTrace) {
  const { decoded, fromSqs } = decode(event, invocationTrace);
  const messages = decoded.map(([messageId, record, trace]) => {
    const body = JSON.stringify({ Records: [record] });
    const tp = traceparent(trace);
    const size = Buffer.byteLength(body) + (tp ? "traceparent".length + "String".length + tp.length : 0);
    return { messageId, body, trace, traceparent: tp, size };
  });
  const calls = [];
  for (const target of TARGETS) {
    if (target.startsWith("arn:aws:sns:")) {
      const groups = new Map();
      for (const m of messages) {
        if (!groups.has(m.trace)) groups.set(m.trace, []);
        groups.get(m.trace).push(m);
      }
      for (const [trace, group] of groups) {
        for (const batch of chunks(group, SNS_MAX_BYTES)) calls.push({ target, trace, batch });
      }
    } else {
      for (const batch of chunks(messages, SQS_MAX_BYTES)) calls.push({ target, trace: null, batch });
    }
  }
  return { calls, fromSqs };
}

function attributes(m) {
  return m.traceparent ? { traceparent: { DataType: "String", StringValue: m.traceparent } } : {};
}

async function sendSqs(queueUrl, batch) {
  const Entries = batch.map((m, i) => {
    const entry = { Id: String(i), MessageBody: m.body, MessageAttributes: attributes(m) };
    if (m.trace) entry.MessageSystemAttributes = { AWSTraceHeader: { DataType: "String", StringValue: m.trace } };
    return entry;
  });
  const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
  return (out.Failed || []).map((f) => batch[Number(f.Id)]);
}

async function sendSns(topicArn, trace, batch) {
  const PublishBatchRequestEntries = batch.map((m, i) => ({
    Id: String(i),
    Message: m.body,
    MessageAttributes: attributes(m),
  }));
  const command = new PublishBatchCommand({ TopicArn: topicArn, PublishBatchRequestEntries });
  // The group's trace as the request header (set before the SDK's recursion-detection middleware,
  // which only fills the header from _X_AMZN_TRACE_ID when it is absent).
  command.middlewareStack.add(
    (next) => async (args) => {
      if (trace) args.request.headers["X-Amzn-Trace-Id"] = trace;
      else delete args.request.headers["X-Amzn-Trace-Id"];
      return next(args);
    },
    { step: "build", name: "groupTraceHeader" },
  );
  const out = await sns.send(command);
  return (out.Failed || []).map((f) => batch[Number(f.Id)]);
}

async function call({ target, trace, batch }) {
  try {
    return target.startsWith("arn:aws:sns:") ? await sendSns(target, trace, batch) : await sendSqs(target, batch);
  } catch (e) {
    console.error(`publish to ${target} failed: ${e}`);
    return batch;
  }
}

async function handler(event) {
  const invocationTrace = parseTraceHeader(process.env._X_AMZN_TRACE_ID);
  const { calls, fromSqs } = plan(event, invocationTrace);
  let failed = [];
  if (MODE === "sequential") {
    for (const c of calls) failed.push(...(await call(c)));
  } else {
    failed = (await Promise.all(calls.map(call))).flat();
  }
  if (fromSqs) {
    const ids = [...new Set(failed.map((m) => m.messageId))];
    return { batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) };
  }
  if (failed.length) throw new Error(`${failed.length} messages not delivered`);
  return { batchItemFailures: [] };
}

async function main() {
  const base = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
  for (;;) {
    const next = await fetch(`${base}/invocation/next`);
    const requestId = next.headers.get("lambda-runtime-aws-request-id");
    const trace = next.headers.get("lambda-runtime-trace-id");
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    const event = await next.json();
    let result;
    try {
      result = await handler(event);
    } catch (e) {
      await fetch(`${base}/invocation/${requestId}/error`, {
        method: "POST",
        headers: { "Lambda-Runtime-Function-Error-Type": "Runtime.HandlerError" },
        body: JSON.stringify({ errorType: e.name, errorMessage: e.message }),
      });
      continue;
    }
    await fetch(`${base}/invocation/${requestId}/response`, { method: "POST", body: JSON.stringify(result) });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
