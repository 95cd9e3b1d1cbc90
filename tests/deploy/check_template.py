"""Offline checks of the SAM template after the SAM transform (run with the deploy venv's python).

Usage: python tests/deploy/check_template.py [template.yaml]

Expands the template with aws-sam-translator (no AWS call: the template names its own role, so
no managed policy has to be looked up) and checks what the deployment contract needs:
- the function: provided.al2023, arm64, handler bootstrap, X-Ray tracing Active, RELAY_TARGETS set;
- the SQS event source mapping reports partial batch failures; the source queue has a redrive policy;
- async invocations: MaximumRetryAttempts 2 and an SQS on-failure destination;
- least privilege: no IAM action contains '*', every sqs:/sns: statement names exact ARNs (no '*'
  resource), sqs:SendMessage covers exactly the target queues plus the failure queue, sns:Publish
  exactly the target topic; no managed policy is attached to the relay role.
Prints one line per failed check and exits 1 if any failed, else prints 'template checks: ok'.
"""

import json
import sys

import boto3
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
with open(path, encoding="utf-8") as f:
    sam = yaml_parse(f.read())

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

for f in failures:
    print(f"template check failed: {f}")
if failures:
    sys.exit(1)
print("template checks: ok")
