"""Offline checks of the SAM template after the SAM transform (run with the deploy venv's python).

Usage: python tests/deploy/check_template.py [--event-types FILE] [template.yaml]

  --event-types FILE   a JSON list of S3 event types, e.g. every value of aws-cdk-lib's
                       s3.EventType (scripts/check-deploy.sh writes it with node from cdk/):
                       the FilterEvents AllowedPattern must accept each of them, with and
                       without the s3: prefix, and all of them comma-joined.

Expands the template with aws-sam-translator (no AWS call: the template names its own role, so
no managed policy has to be looked up) and checks what the deployment contract needs:
- the function: provided.al2023, arm64, handler bootstrap, X-Ray tracing Active, RELAY_TARGETS set;
- the SQS event source mapping reports partial batch failures; the source queue has a redrive policy;
- async invocations: MaximumRetryAttempts 2 and an SQS on-failure destination;
- least privilege: no IAM action contains '*', every sqs:/sns: statement names exact ARNs (no '*'
  resource), sqs:SendMessage covers exactly the target queues plus the failure queue, sns:Publish
  exactly the target topic; no managed policy is attached to the relay role; statements under
  Fn::If are checked in both branches;
- KMS: the only kms: statement grants exactly kms:GenerateDataKey and kms:Decrypt on exactly the
  TargetKmsKeyArns parameter, under a condition that is false for the default (empty) list and
  true for a non-empty one;
- EventBridge and Step Functions targets: events:PutEvents + events:DescribeEventBus on exactly the
  TargetEventBusArn parameter, states:StartExecution on exactly TargetStateMachineArn, each under a
  condition false by default and true when the parameter is set; RELAY_TARGETS names the bus and the
  state machine (with the filters) exactly when they are set, and never holds an empty entry;
- the SQS source queue's visibility timeout is, for every allowed FunctionTimeout value, at least
  6 x that timeout + the event source's MaximumBatchingWindowInSeconds (capped at SQS's 43200 s
  maximum) and never below the timeout; FunctionTimeout must therefore be a list of AllowedValues
  and the visibility timeout a number or a FindInMap keyed by FunctionTimeout;
- encryption and transport: every SNS topic has a KmsMasterKeyId; every SQS queue has exactly one
  queue policy, and it denies sqs:* to everyone when aws:SecureTransport is false (Resource the
  queue's ARN); every topic's policy denies sns:Publish likewise;
- concurrency and memory: RELAY_MAX_IN_FLIGHT is absent by default (the relay derives it from
  the memory size) and the MaxInFlight parameter's value when set; ReservedConcurrentExecutions and the event source's
  ScalingConfig.MaximumConcurrency are set only under conditions that are false with the default
  parameter values (AWS::NoValue otherwise) and true when the parameters are set;
  MaximumConcurrency is at most 1000; MemorySize comes from the MemorySize parameter (Default and
  Description set), the one place it is defined;
- OpenTelemetry collector layer: with the default parameters the function has no Layers and no
  OTEL_* (or OPENTELEMETRY_*) environment variable at all; each of them is an Fn::If [<condition>,
  ..., AWS::NoValue] whose condition is false by default, and the layer and every OTEL_* variable
  are on with OtelCollectorLayerArn set. Layers is then exactly [!Ref OtelCollectorLayerArn] and
  OTEL_EXPORTER_OTLP_ENDPOINT the OtelExporterEndpoint default (http://localhost:4318, the layer's
  OTLP/HTTP receiver); OPENTELEMETRY_COLLECTOR_CONFIG_URI only with the layer and a non-empty
  OtelCollectorConfigUri; a changed OtelExporterEndpoint alone sets the endpoint variable, no layer.
  OtelCollectorLayerArn's AllowedPattern takes layer version ARNs (and empty) only. No IAM statement
  names an Otel* parameter, and the role has no lambda: or s3: action (the layer needs none);
- the FilterEvents parameter's AllowedPattern (a Java regex, whole-value match; the pattern uses
  nothing whose meaning differs in Python's re) follows the relay's events= grammar: it accepts
  colon-less and future event types (IntelligentTiering, s3:ObjectAnnotation:*, ...), category
  and name-prefix wildcards, comma-separated lists, and rejects malformed items; with
  --event-types, also every listed event type.
Prints one line per failed check and exits 1 if any failed, else prints 'template checks: ok'.
"""

import argparse
import json
import re
import sys

import boto3
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

args = argparse.ArgumentParser(description="Offline checks of the SAM template.")
args.add_argument("--event-types", metavar="FILE", help="JSON list of S3 event types FilterEvents must accept")
args.add_argument("template", nargs="?", default="template.yaml")
args = args.parse_args()
path = args.template
with open(path, encoding="utf-8") as f:
    sam = yaml_parse(f.read())
event_types = None
if args.event_types:
    with open(args.event_types, encoding="utf-8") as f:
        event_types = json.load(f)
    if not (isinstance(event_types, list) and event_types and all(isinstance(e, str) for e in event_types)):
        print(f"template check failed: {args.event_types} is not a non-empty JSON list of strings: {event_types!r}")
        sys.exit(1)

# `sam package` would upload CodeUri: stand in an S3 URI, as cfn-lint does.
for res in sam.get("Resources", {}).values():
    if res.get("Type") == "AWS::Serverless::Function" and not str(res["Properties"].get("CodeUri", "s3://")).startswith("s3://"):
        res["Properties"]["CodeUri"] = "s3://example-bucket/relay.zip"

# A session with a region but no credentials: the translator only reads the region/partition.
session = boto3.session.Session(region_name="us-east-1")
cfn = Translator(managed_policy_map={}, sam_parser=parser.Parser(), boto_session=session).translate(
    sam_template=sam, parameter_values={}
)
resources = cfn["Resources"]
params = sam.get("Parameters", {})
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def of_type(t):
    return {k: v for k, v in resources.items() if v["Type"] == t}


def as_list(v):
    return v if isinstance(v, list) else [v]


functions = of_type("AWS::Lambda::Function")
check(list(functions) == ["RelayFunction"], f"expected one function RelayFunction, got {list(functions)}")
fn = functions.get("RelayFunction", {}).get("Properties", {})
check(fn.get("Runtime") == "provided.al2023", f"Runtime is {fn.get('Runtime')!r}")
check(fn.get("Architectures") == ["arm64"], f"Architectures is {fn.get('Architectures')!r}")
check(fn.get("Handler") == "bootstrap", f"Handler is {fn.get('Handler')!r}")
check(fn.get("TracingConfig") == {"Mode": "Active"}, f"TracingConfig is {fn.get('TracingConfig')!r}")
env = fn.get("Environment", {}).get("Variables", {})
for var in ("RELAY_TARGETS", "RELAY_DEADLINE_MARGIN_MS"):
    check(var in env, f"environment variable {var} missing")
check(sam["Resources"]["RelayFunction"].get("Metadata", {}).get("BuildMethod") == "rust-cargolambda",
      "BuildMethod is not rust-cargolambda")

esms = of_type("AWS::Lambda::EventSourceMapping")
check(len(esms) == 1, f"expected one event source mapping, got {len(esms)}")
for name, esm in esms.items():
    check(esm["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
          f"{name}: FunctionResponseTypes is {esm['Properties'].get('FunctionResponseTypes')!r}")
source = resources.get("SourceQueue", {}).get("Properties", {})
check("deadLetterTargetArn" in source.get("RedrivePolicy", {}), "SourceQueue has no RedrivePolicy")

eics = of_type("AWS::Lambda::EventInvokeConfig")
check(len(eics) == 1, f"expected one EventInvokeConfig, got {len(eics)}")
for name, eic in eics.items():
    p = eic["Properties"]
    check(p.get("MaximumRetryAttempts") == 2, f"{name}: MaximumRetryAttempts is {p.get('MaximumRetryAttempts')!r}")
    on_failure = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    check(on_failure == {"Fn::GetAtt": ["FailureQueue", "Arn"]}, f"{name}: OnFailure destination is {on_failure!r}")

check(resources.get("TargetTopic", {}).get("Properties", {}).get("TracingConfig") == "Active",
      "TargetTopic TracingConfig is not Active")
check(resources.get("TargetFifoQueue", {}).get("Properties", {}).get("FifoQueue") is True,
      "TargetFifoQueue is not FIFO")

# --- parameter defaults and conditions, to see which conditional parts are on by default.
NO_VALUE = {"Ref": "AWS::NoValue"}


def param_value(name, overrides):
    """A parameter's value as CloudFormation passes it to Ref: a string, a list for list types."""
    p = params.get(name, {})
    v = overrides.get(name, p.get("Default", ""))
    if str(p.get("Type", "")).startswith(("CommaDelimitedList", "List<")):
        return [s.strip() for s in str(v).split(",")] if not isinstance(v, list) else v
    return str(v)


def resolve(value, overrides):
    if isinstance(value, dict) and len(value) == 1:
        (op, arg), = value.items()
        if op == "Ref" and arg in params:
            return param_value(arg, overrides)
        if op == "Fn::Join":
            sep, items = arg
            return sep.join(str(resolve(i, overrides)) for i in as_list(resolve(items, overrides)))
        if op == "Fn::If":
            cond, yes, no = arg
            return resolve(yes if condition(cond, overrides) else no, overrides)
        if op == "Fn::Sub":
            return substitute(arg, overrides)
    if isinstance(value, list):
        return [resolve(v, overrides) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, (dict, list)) else str(value)


def substitute(arg, overrides):
    """Fn::Sub with parameters (and the given variables) filled in; other names stay as <name>."""
    text, variables = (arg, {}) if isinstance(arg, str) else arg

    def one(m):
        name = m.group(1)
        if name in variables:
            return str(resolve(variables[name], overrides))
        if name in params:
            v = param_value(name, overrides)
            return ",".join(v) if isinstance(v, list) else v
        return f"<{name}>"

    return re.sub(r"\$\{([^}!]+)\}", one, text)


def condition(name, overrides=None):
    """Evaluates a template condition for the parameter defaults (plus overrides)."""
    overrides = overrides or {}

    def ev(c):
        (op, arg), = c.items()
        if op == "Fn::Equals":
            return resolve(arg[0], overrides) == resolve(arg[1], overrides)
        if op == "Fn::Not":
            return not ev(arg[0])
        if op == "Fn::And":
            return all(ev(a) for a in arg)
        if op == "Fn::Or":
            return any(ev(a) for a in arg)
        if op == "Condition":
            return ev(sam["Conditions"][arg])
        raise ValueError(f"condition function {op} not understood")

    if name not in sam.get("Conditions", {}):
        check(False, f"condition {name} is not defined")
        return None
    return ev(sam["Conditions"][name])


def conditional_param(value, param, what, set_to):
    """`value` must be Fn::If [cond, <uses param>, AWS::NoValue], cond off by default, on when set."""
    branches = value.get("Fn::If") if isinstance(value, dict) else None
    if not (isinstance(branches, list) and len(branches) == 3 and branches[2] == NO_VALUE
            and param in json.dumps(branches[1])):
        check(False, f"{what} is {value!r}, expected Fn::If [<condition>, <Ref {param}>, AWS::NoValue]")
        return
    check(condition(branches[0]) is False, f"{what}: condition {branches[0]} is true with the default parameter values")
    check(condition(branches[0], {param: set_to}) is True, f"{what}: condition {branches[0]} stays false with {param}={set_to}")


def branches_of(statement):
    """[(condition or None, statement)] for a policy statement, both branches of an Fn::If."""
    if isinstance(statement, dict) and list(statement) == ["Fn::If"]:
        cond, yes, no = statement["Fn::If"]
        return [(cond, s) for s in (yes, no) if s != NO_VALUE]
    return [(None, statement)]


# --- least privilege
role = resources.get("RelayRole", {}).get("Properties", {})
check(fn.get("Role") == {"Fn::GetAtt": ["RelayRole", "Arn"]}, "function does not use RelayRole")
check(not role.get("ManagedPolicyArns"), f"RelayRole has managed policies {role.get('ManagedPolicyArns')!r}")
roles = of_type("AWS::IAM::Role")
check(list(roles) == ["RelayRole"], f"unexpected roles {list(roles)} (SAM generated one?)")

granted = {}
kms_statements = []
target_statements = {}
for policy in role.get("Policies", []):
    for cond, st in (b for s in as_list(policy["PolicyDocument"]["Statement"]) for b in branches_of(s)):
        actions = as_list(st["Action"])
        if any(a.startswith("kms:") for a in actions):
            kms_statements.append((cond, st))
        for prefix in ("events:", "states:"):
            if any(a.startswith(prefix) for a in actions):
                target_statements.setdefault(prefix, []).append((cond, st))
        res = as_list(st["Resource"])
        for a in actions:
            check("*" not in a, f"{policy['PolicyName']}/{st.get('Sid')}: wildcard action {a!r}")
            if a.split(":")[0] in ("sqs", "sns", "events", "states"):
                for r in res:
                    check("*" not in json.dumps(r), f"{st.get('Sid')}: {a} on wildcard resource {r!r}")
            granted.setdefault(a, []).extend(json.dumps(r, sort_keys=True) for r in res)
        for r in res:
            if r == "*":
                check(all(a.startswith("xray:") for a in actions),
                      f"{st.get('Sid')}: resource '*' for {actions} (only X-Ray actions may have it)")


def getatt(name, attr):
    return json.dumps({"Fn::GetAtt": [name, attr]}, sort_keys=True)


want_send = sorted(getatt(q, "Arn") for q in ("TargetQueue", "TargetFifoQueue", "FailureQueue"))
check(sorted(granted.get("sqs:SendMessage", [])) == want_send,
      f"sqs:SendMessage resources {granted.get('sqs:SendMessage')} != {want_send}")
want_pub = [getatt("TargetTopic", "TopicArn")]
check(granted.get("sns:Publish", []) == want_pub, f"sns:Publish resources {granted.get('sns:Publish')} != {want_pub}")

# --- KMS keys of SSE-KMS targets: exactly GenerateDataKey + Decrypt, exactly on the parameter's keys.
KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
check(params.get("TargetKmsKeyArns", {}).get("Type") == "CommaDelimitedList",
      "parameter TargetKmsKeyArns (CommaDelimitedList) missing")
check(len(kms_statements) == 1, f"expected one kms: statement (TargetKmsKeyArns), got {len(kms_statements)}")
for cond, st in kms_statements:
    sid = st.get("Sid")
    check(sorted(as_list(st["Action"])) == KMS_ACTIONS, f"{sid}: kms actions {as_list(st['Action'])} != {KMS_ACTIONS}")
    check(st.get("Resource") == {"Ref": "TargetKmsKeyArns"},
          f"{sid}: kms resource is {st.get('Resource')!r}, expected exactly the keys of !Ref TargetKmsKeyArns")
    if cond is None:
        check(False, f"{sid}: kms statement is unconditional (it must vanish when TargetKmsKeyArns is empty)")
    else:
        check(condition(cond) is False, f"{sid}: condition {cond} is true for an empty TargetKmsKeyArns")
        check(condition(cond, {"TargetKmsKeyArns": "arn:aws:kms:us-east-1:111122223333:key/example"}) is True,
              f"{sid}: condition {cond} is false for a non-empty TargetKmsKeyArns")

# --- EventBridge bus and Step Functions targets: exact actions on exactly the parameter's ARN, only when set.
OPTIONAL_TARGETS = [
    ("events:", "TargetEventBusArn", ["events:DescribeEventBus", "events:PutEvents"],
     "arn:aws:events:us-east-1:111122223333:event-bus/uploads"),
    ("states:", "TargetStateMachineArn", ["states:StartExecution"],
     "arn:aws:states:us-east-1:111122223333:stateMachine:Thumbnails"),
]
filters = substitute("?prefix=${FilterPrefix}&suffix=${FilterSuffix}&events=${FilterEvents}", {})
default_targets = resolve(env.get("RELAY_TARGETS", ""), {})
check(",," not in default_targets and ",?" not in default_targets and not default_targets.endswith(","),
      f"RELAY_TARGETS has an empty entry by default: {default_targets!r}")
for prefix, param, actions, example in OPTIONAL_TARGETS:
    check(params.get(param, {}).get("Default") == "", f"parameter {param} (default empty) missing")
    statements = target_statements.get(prefix, [])
    check(len(statements) == 1, f"expected one {prefix} statement ({param}), got {len(statements)}")
    for cond, st in statements:
        sid = st.get("Sid")
        check(sorted(as_list(st["Action"])) == actions, f"{sid}: actions {as_list(st['Action'])} != {actions}")
        check(st.get("Resource") == {"Ref": param}, f"{sid}: resource is {st.get('Resource')!r}, expected !Ref {param}")
        check(cond is not None and condition(cond) is False, f"{sid}: granted with {param} empty")
        check(cond is not None and condition(cond, {param: example}) is True, f"{sid}: not granted with {param} set")
    check(example not in default_targets, f"RELAY_TARGETS names {param} while it is empty")
    check(resolve(env.get("RELAY_TARGETS", ""), {param: example}) == default_targets + "," + example + filters,
          f"RELAY_TARGETS with {param} set is not the default list plus ,{example}{filters}: "
          f"{resolve(env.get('RELAY_TARGETS', ''), {param: example})!r}")

# --- SQS source: visibility timeout >= 6 x function timeout + batching window, for every allowed timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html ("at least six times the
# configuration timeout on your function"); SQS's maximum visibility timeout is 12 hours.
SQS_MAX_VISIBILITY = 43200
timeout_param = params.get("FunctionTimeout", {})
allowed_timeouts = timeout_param.get("AllowedValues")
windows = [e["Properties"].get("MaximumBatchingWindowInSeconds", 0) for e in esms.values()]
check(all(isinstance(w, int) for w in windows), f"MaximumBatchingWindowInSeconds is not a number: {windows!r}")
window = max((w for w in windows if isinstance(w, int)), default=0)
visibility = source.get("VisibilityTimeout", 30)  # SQS's default when the property is absent


def visibility_for(timeout):
    if isinstance(visibility, dict) and list(visibility) == ["Fn::FindInMap"]:
        name, key, attr = visibility["Fn::FindInMap"]
        if key != {"Ref": "FunctionTimeout"}:
            return None, f"FindInMap key is {key!r}, not Ref FunctionTimeout"
        table = sam.get("Mappings", {}).get(name, {})
        entry = table.get(str(timeout), table.get(timeout))
        if not isinstance(entry, dict) or attr not in entry:
            return None, f"mapping {name} has no {attr} for FunctionTimeout {timeout}"
        return entry[attr], None
    try:
        return int(visibility), None
    except (TypeError, ValueError):
        return None, f"SourceQueue VisibilityTimeout {visibility!r} is neither a number nor a FindInMap on FunctionTimeout"


check(fn.get("Timeout") == {"Ref": "FunctionTimeout"}, f"function Timeout is {fn.get('Timeout')!r}, not Ref FunctionTimeout")
check(isinstance(allowed_timeouts, list) and allowed_timeouts,
      "FunctionTimeout has no AllowedValues: a MinValue/MaxValue range cannot be mapped to visibility timeouts")
for timeout in allowed_timeouts or []:
    seconds, problem = visibility_for(timeout)
    if problem:
        check(False, problem)
        continue
    want = min(SQS_MAX_VISIBILITY, 6 * int(timeout) + int(window))
    check(int(seconds) >= want,
          f"SourceQueue VisibilityTimeout {seconds} s for FunctionTimeout {timeout} s is below 6 x {timeout} + {window} "
          f"(batching window) = {want} s")
    check(int(seconds) >= int(timeout), f"SourceQueue VisibilityTimeout {seconds} s < FunctionTimeout {timeout} s")
    check(int(seconds) <= SQS_MAX_VISIBILITY, f"SourceQueue VisibilityTimeout {seconds} s > SQS maximum {SQS_MAX_VISIBILITY}")

# --- encryption at rest of topics, TLS-only queues and topics.
for name, topic in of_type("AWS::SNS::Topic").items():
    check(bool(topic.get("Properties", {}).get("KmsMasterKeyId")), f"{name} is not encrypted (no KmsMasterKeyId)")


def denies_insecure_transport(statements, action, resource):
    for st in statements:
        principal = st.get("Principal")
        cond = st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
        if (st.get("Effect") == "Deny" and principal in ("*", {"AWS": "*"}) and action in as_list(st.get("Action"))
                and resource in as_list(st.get("Resource")) and str(cond).lower() == "false"):
            return True
    return False


queue_policies = of_type("AWS::SQS::QueuePolicy")
for name in of_type("AWS::SQS::Queue"):
    covering = [p for p in queue_policies.values() if {"Ref": name} in as_list(p["Properties"].get("Queues"))]
    check(len(covering) == 1, f"{name} has {len(covering)} queue policies, expected exactly one (a queue keeps only one)")
    statements = [s for p in covering for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])]
    check(denies_insecure_transport(statements, "sqs:*", {"Fn::GetAtt": [name, "Arn"]}),
          f"{name}: no queue policy statement denies sqs:* when aws:SecureTransport is false")
topic_policies = of_type("AWS::SNS::TopicPolicy")
for name in of_type("AWS::SNS::Topic"):
    statements = [s for p in topic_policies.values() if {"Ref": name} in as_list(p["Properties"].get("Topics"))
                  for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])]
    check(denies_insecure_transport(statements, "sns:Publish", {"Fn::GetAtt": [name, "TopicArn"]}),
          f"{name}: no topic policy statement denies sns:Publish when aws:SecureTransport is false")

# --- concurrency (off by default) and memory (one parameter).
conditional_param(fn.get("ReservedConcurrentExecutions"), "ReservedConcurrency", "ReservedConcurrentExecutions", "10")
for name, esm in esms.items():
    conditional_param(esm["Properties"].get("ScalingConfig"), "MaximumConcurrency", f"{name}: ScalingConfig", "10")
max_conc = params.get("MaximumConcurrency", {})
check(str(max_conc.get("MaxValue")) == "1000", f"MaximumConcurrency MaxValue is {max_conc.get('MaxValue')!r}, not 1000")
check("MaximumConcurrency" in json.dumps(sam.get("Rules", {})),
      "no Rules assertion on MaximumConcurrency (ScalingConfig.MaximumConcurrency 1 is invalid; only 0 = none or 2-1000)")
# RELAY_MAX_IN_FLIGHT: unset by default, so the relay derives it from the memory size.
conditional_param(env.get("RELAY_MAX_IN_FLIGHT"), "MaxInFlight", "RELAY_MAX_IN_FLIGHT", "32")
check(resolve(env.get("RELAY_MAX_IN_FLIGHT"), {"MaxInFlight": "32"}) == "32",
      "RELAY_MAX_IN_FLIGHT with MaxInFlight=32 is not 32")
check(fn.get("MemorySize") == {"Ref": "MemorySize"}, f"function MemorySize is {fn.get('MemorySize')!r}, not Ref MemorySize")
memory = params.get("MemorySize", {})
check("Default" in memory and memory.get("Description"), f"parameter MemorySize needs a Default and a Description: {memory!r}")

# --- OpenTelemetry collector layer (src/otel.rs exports only when an OTEL_EXPORTER_OTLP_*ENDPOINT is set):
# nothing by default; the layer and the endpoint variable with OtelCollectorLayerArn set.
LAYER_PARAM, ENDPOINT_PARAM, CONFIG_URI_PARAM = "OtelCollectorLayerArn", "OtelExporterEndpoint", "OtelCollectorConfigUri"
LAYER_EXAMPLE = "arn:aws:lambda:us-east-1:184161586896:layer:opentelemetry-collector-arm64-0_19_0:1"
COLLECTOR_ENDPOINT = "http://localhost:4318"  # the collector layer's OTLP/HTTP receiver
CONFIG_URI_EXAMPLE = "/var/task/collector.yaml"
OTEL_VAR_PREFIXES = ("OTEL_", "OPENTELEMETRY_")
layer_param = params.get(LAYER_PARAM, {})
check(layer_param.get("Type") == "String" and layer_param.get("Default") == "",
      f"parameter {LAYER_PARAM} (String, default empty) missing: {layer_param!r}")
check(params.get(ENDPOINT_PARAM, {}).get("Default") == COLLECTOR_ENDPOINT,
      f"parameter {ENDPOINT_PARAM} default is {params.get(ENDPOINT_PARAM, {}).get('Default')!r}, not {COLLECTOR_ENDPOINT}")
check(params.get(CONFIG_URI_PARAM, {}).get("Default") == "", f"parameter {CONFIG_URI_PARAM} (default empty) missing")
try:
    layer_pattern = re.compile(layer_param.get("AllowedPattern", ""))
except re.error as e:
    check(False, f"{LAYER_PARAM} AllowedPattern does not compile: {e}")
    layer_pattern = None
if layer_pattern is not None:
    for value in ("", LAYER_EXAMPLE, "arn:aws-cn:lambda:cn-north-1:111122223333:layer:aws-otel-collector-arm64-ver-0-102-1:1"):
        check(layer_pattern.fullmatch(value) is not None, f"{LAYER_PARAM} AllowedPattern refuses {value!r}")
    for value in ("opentelemetry-collector", LAYER_EXAMPLE.rsplit(":", 1)[0],
                  "arn:aws:lambda:us-east-1:111122223333:function:relay", LAYER_EXAMPLE + " "):
        check(layer_pattern.fullmatch(value) is None, f"{LAYER_PARAM} AllowedPattern accepts {value!r}")


def otel_vars(overrides):
    """The OTEL_*/OPENTELEMETRY_* variables the function gets with these parameters (AWS::NoValue left out)."""
    resolved = {k: resolve(v, overrides) for k, v in env.items() if k.startswith(OTEL_VAR_PREFIXES)}
    return {k: v for k, v in resolved.items() if v != NO_VALUE}


def layers_of(overrides):
    value = resolve(fn.get("Layers", NO_VALUE), overrides)
    return [] if value == NO_VALUE else value


layers = fn.get("Layers")
if layers is None:
    check(False, f"function has no Layers property (expected Fn::If [<condition>, [!Ref {LAYER_PARAM}], AWS::NoValue])")
else:
    conditional_param(layers, LAYER_PARAM, "Layers", LAYER_EXAMPLE)
    layers_if = layers.get("Fn::If") if isinstance(layers, dict) else None
    check(isinstance(layers_if, list) and len(layers_if) == 3 and layers_if[1] == [{"Ref": LAYER_PARAM}],
          f"Layers is {layers!r}, expected exactly [!Ref {LAYER_PARAM}] under its condition")
for name, value in env.items():
    if not name.startswith(OTEL_VAR_PREFIXES):
        continue
    branches = value.get("Fn::If") if isinstance(value, dict) else None
    if not (isinstance(branches, list) and len(branches) == 3 and branches[2] == NO_VALUE):
        check(False, f"environment variable {name} is {value!r}, expected Fn::If [<condition>, <value>, AWS::NoValue]")
        continue
    check(condition(branches[0]) is False, f"{name}: condition {branches[0]} is true with the default parameter values")
    if name.startswith("OTEL_"):
        check(condition(branches[0], {LAYER_PARAM: LAYER_EXAMPLE}) is True,
              f"{name}: condition {branches[0]} stays false with {LAYER_PARAM} set")
endpoint_var = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
endpoint_if = endpoint_var.get("Fn::If") if isinstance(endpoint_var, dict) else None
check(isinstance(endpoint_if, list) and len(endpoint_if) == 3 and endpoint_if[1] == {"Ref": ENDPOINT_PARAM},
      f"OTEL_EXPORTER_OTLP_ENDPOINT is {endpoint_var!r}, expected Fn::If [<condition>, !Ref {ENDPOINT_PARAM}, AWS::NoValue]")
OTEL_CASES = [
    # (parameter overrides, expected layers, expected OTEL_*/OPENTELEMETRY_* variables)
    ({}, [], {}),
    ({CONFIG_URI_PARAM: CONFIG_URI_EXAMPLE}, [], {}),
    ({LAYER_PARAM: LAYER_EXAMPLE}, [LAYER_EXAMPLE], {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR_ENDPOINT}),
    ({LAYER_PARAM: LAYER_EXAMPLE, CONFIG_URI_PARAM: CONFIG_URI_EXAMPLE}, [LAYER_EXAMPLE],
     {"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR_ENDPOINT, "OPENTELEMETRY_COLLECTOR_CONFIG_URI": CONFIG_URI_EXAMPLE}),
    ({LAYER_PARAM: LAYER_EXAMPLE, ENDPOINT_PARAM: "http://127.0.0.1:4318"}, [LAYER_EXAMPLE],
     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}),
    ({ENDPOINT_PARAM: "https://otlp.example.com"}, [], {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com"}),
]
for overrides, want_layers, want_vars in OTEL_CASES:
    given = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the default parameters"
    check(layers_of(overrides) == want_layers, f"Layers with {given} is {layers_of(overrides)!r}, expected {want_layers!r}")
    check(otel_vars(overrides) == want_vars,
          f"OpenTelemetry variables with {given} are {otel_vars(overrides)!r}, expected {want_vars!r}")
# The layer needs no permission of the function's role (a public layer is read by Lambda at deployment).
for iam_name, iam_res in resources.items():
    if iam_res["Type"].startswith("AWS::IAM::"):
        text = json.dumps(iam_res.get("Properties", {}))
        for param in (LAYER_PARAM, ENDPOINT_PARAM, CONFIG_URI_PARAM):
            check(param not in text, f"{iam_name} names {param}: the collector layer gets no IAM permission")
for action in granted:
    check(not action.startswith(("lambda:", "s3:")), f"RelayRole has {action}: the collector layer needs no such permission")

# --- FilterEvents: the relay's events= grammar (src/route.rs EventPattern::parse): optional s3:,
# names (an ASCII letter, then ASCII letters/digits) joined by ':', optionally ending in '*' after
# a ':' or after part of a name. The examples are grammar cases, not the list of event types: any
# well-formed future name must pass, and --event-types brings aws-cdk-lib's current list.
EVENTS_ACCEPTED = [
    "ObjectCreated:*,ObjectRemoved:*",
    "ObjectCreated:Put",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "IntelligentTiering",
    "s3:IntelligentTiering",
    "LifecycleTransition",
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectAnnotation:*",
    "ObjectAnnotation:Added",
    "ObjectCreated:Complete*",
    "ObjectRestore:*,s3:LifecycleExpiration:*,IntelligentTiering,ObjectCreated:Put",
    "S3:Foo",
    "A1:B2:C3",
]
EVENTS_REJECTED = [
    "",
    "*",
    "s3:",
    "s3:*",
    "ObjectCreated:*,s3:*",
    "Object Created:*",
    ":Put",
    "ObjectCreated::Put",
    "ObjectCreated:",
    "ObjectCreated:P*t",
    "ObjectCreated:**",
    "9Lives",
    "ObjectCreated:9Lives",
    "a,,b",
    "ObjectCreated:*,",
    ",ObjectCreated:*",
    "ObjectCreated:*, ObjectRemoved:*",
    " ObjectCreated:*",
    "ObjectCreated:Put&suffix=.jpg",
    "ObjectCreated:Put?",
    "ObjectCreated:Put/",
    "Object-Created",
    "Obj\u00e9ctCreated:Put",
    "ObjectCreated:Put\n",
]
filter_events = params.get("FilterEvents", {})
pattern_text = filter_events.get("AllowedPattern")
check(isinstance(pattern_text, str), f"parameter FilterEvents has no AllowedPattern ({filter_events!r})")
if isinstance(pattern_text, str):
    try:
        pattern = re.compile(pattern_text)
    except re.error as e:
        check(False, f"FilterEvents AllowedPattern {pattern_text!r} does not compile: {e}")
        pattern = None
    if pattern is not None:
        def accepts(value):
            return pattern.fullmatch(value) is not None

        check(accepts(str(filter_events.get("Default", ""))),
              f"FilterEvents AllowedPattern refuses its own Default {filter_events.get('Default')!r}")
        for value in EVENTS_ACCEPTED:
            check(accepts(value), f"FilterEvents AllowedPattern refuses {value!r}")
        for value in EVENTS_REJECTED:
            check(not accepts(value), f"FilterEvents AllowedPattern accepts malformed {value!r}")
        if event_types is not None:
            bare = [e[3:] if e.startswith("s3:") else e for e in event_types]
            prefixed = ["s3:" + e for e in bare]
            for value in sorted(set(event_types + bare + prefixed)):
                check(accepts(value), f"FilterEvents AllowedPattern refuses event type {value!r}")
            for joined in (event_types, bare, prefixed):
                check(accepts(",".join(joined)), f"FilterEvents AllowedPattern refuses the list {','.join(joined)!r}")

for f in failures:
    print(f"template check failed: {f}")
if failures:
    sys.exit(1)
if event_types is None:
    print("template checks: ok")
else:
    print(f"template checks: ok (FilterEvents accepts each of the {len(event_types)} listed event types with and"
          " without s3:, and their comma-joined lists)")
