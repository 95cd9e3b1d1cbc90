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
  exactly the target topic; no managed policy is attached to the relay role;
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

# --- least privilege
role = resources.get("RelayRole", {}).get("Properties", {})
check(fn.get("Role") == {"Fn::GetAtt": ["RelayRole", "Arn"]}, "function does not use RelayRole")
check(not role.get("ManagedPolicyArns"), f"RelayRole has managed policies {role.get('ManagedPolicyArns')!r}")
roles = of_type("AWS::IAM::Role")
check(list(roles) == ["RelayRole"], f"unexpected roles {list(roles)} (SAM generated one?)")

granted = {}
for policy in role.get("Policies", []):
    for st in as_list(policy["PolicyDocument"]["Statement"]):
        actions = as_list(st["Action"])
        res = as_list(st["Resource"])
        for a in actions:
            check("*" not in a, f"{policy['PolicyName']}/{st.get('Sid')}: wildcard action {a!r}")
            if a.split(":")[0] in ("sqs", "sns"):
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
params = sam.get("Parameters", {})
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
