"""Writes deliberately broken copies of template.yaml for scripts/check-deploy.sh.

Usage: python tests/deploy/make_broken_templates.py <template.yaml> <out-dir>

Prints one line per file written: `<kind>\t<path>\t<what is broken>`, where kind says which
check MUST reject the copy:
- `linters`: cfn-lint AND `sam validate --lint` must both fail;
- `template-check`: tests/deploy/check_template.py must fail. Used for breakages the linters
  do not see: cfn-lint 1.58.0 (also behind `sam validate --lint`) reports nothing for a
  Runtime or Architectures typo on an AWS::Serverless::Function (it does on a plain
  AWS::Lambda::Function), nothing for a wildcard in an IAM action, nothing for an
  AllowedPattern that refuses valid values other than the Default, and nothing for the
  deployment rules of check_template.py: a source queue visibility timeout below 6 x the function
  timeout (+ batching window), a queue without a TLS-only policy, an unencrypted topic, a KMS
  statement on Resource '*', a bus grant on Resource '*', an optional target always listed,
  reserved concurrency set by default, RELAY_MAX_IN_FLIGHT set by default, a hard-coded MemorySize, the OpenTelemetry endpoint
  variable or collector layer set unconditionally (for some of these cfn-lint warns only in
  passing, W7001/W8001 about the mapping or condition left unused).
Each copy differs from the real template by one textual edit, so a check that accepts a copy
proves that check is not looking (wrong file, skipped transform, swallowed exit code).
Exits 1 if an edit no longer applies exactly once (the template changed under it).
"""

import os
import sys

BREAKAGES = [
    # (kind, name, what, old, new)
    (
        "linters",
        "dangling-ref",
        "dangling !Ref: the source queue policy names a queue that does not exist",
        "      Queues:\n        - !Ref SourceQueue\n",
        "      Queues:\n        - !Ref SourceQueueTypo\n",
    ),
    (
        "linters",
        "dangling-getatt",
        "dangling !GetAtt: the on-failure destination names a queue that does not exist",
        "Destination: !GetAtt FailureQueue.Arn",
        "Destination: !GetAtt FailureQueueTypo.Arn",
    ),
    (
        "linters",
        "property-typo",
        "property name typo on the log group: RetentionInDays -> RetentionInDay",
        "      RetentionInDays: 14\n",
        "      RetentionInDay: 14\n",
    ),
    (
        "template-check",
        "runtime-typo",
        "Runtime typo provided.al2023 -> provided.al2032",
        "Runtime: provided.al2023",
        "Runtime: provided.al2032",
    ),
    (
        "template-check",
        "wildcard-action",
        "IAM action wildcard: sns:Publish -> sns:*",
        "                Action: sns:Publish\n                Resource: !GetAtt TargetTopic.TopicArn\n",
        "                Action: sns:*\n                Resource: !GetAtt TargetTopic.TopicArn\n",
    ),
    (
        "template-check",
        "visibility-hardcoded",
        "SourceQueue VisibilityTimeout hard-coded back to 180 s while FunctionTimeout allows up to 900 s "
        "(6 x 900 + 1 = 5401 s needed)",
        "      VisibilityTimeout: !FindInMap [SourceQueueVisibilityTimeout, !Ref FunctionTimeout, Seconds]\n",
        "      VisibilityTimeout: 180\n",
    ),
    (
        "template-check",
        "visibility-mapping-short",
        "visibility mapping entry below 6 x its timeout: FunctionTimeout 60 s -> 180 s instead of 361 s",
        '    "60": {Seconds: 361}\n',
        '    "60": {Seconds: 180}\n',
    ),
    (
        "template-check",
        "queue-without-tls-deny",
        "TargetQueue without its queue policy denying aws:SecureTransport false",
        """  TargetQueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues:
        - !Ref TargetQueue
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: DenyInsecureTransport
            Effect: Deny
            Principal: "*"
            Action: "sqs:*"
            Resource: !GetAtt TargetQueue.Arn
            Condition:
              Bool:
                aws:SecureTransport: "false"
""",
        "",
    ),
    (
        "template-check",
        "topic-unencrypted",
        "TargetTopic without KmsMasterKeyId (not encrypted at rest)",
        "      KmsMasterKeyId: alias/aws/sns\n",
        "",
    ),
    (
        "template-check",
        "kms-resource-star",
        "the TargetKmsKeyArns statement on Resource '*' instead of the listed keys",
        "                  Resource: !Ref TargetKmsKeyArns\n",
        '                  Resource: "*"\n',
    ),
    (
        "template-check",
        "bus-resource-star",
        "events:PutEvents on Resource '*' instead of the TargetEventBusArn bus",
        "                  Resource: !Ref TargetEventBusArn\n",
        '                  Resource: "*"\n',
    ),
    (
        "template-check",
        "state-machine-always-listed",
        "RELAY_TARGETS lists the state machine even when TargetStateMachineArn is empty (an empty target entry)",
        "                - HasTargetStateMachine\n                - !Sub \",${TargetStateMachineArn}",
        "                - WithXRayResourcePolicy\n                - !Sub \",${TargetStateMachineArn}",
    ),
    (
        "template-check",
        "reserved-concurrency-unconditional",
        "ReservedConcurrentExecutions set unconditionally (the default 0 would throttle every invocation)",
        "      ReservedConcurrentExecutions: !If [HasReservedConcurrency, !Ref ReservedConcurrency, !Ref AWS::NoValue]\n",
        "      ReservedConcurrentExecutions: !Ref ReservedConcurrency\n",
    ),
    (
        "template-check",
        "memory-hardcoded",
        "MemorySize hard-coded on the function instead of the MemorySize parameter (two places to change it)",
        "      MemorySize: !Ref MemorySize\n",
        "      MemorySize: 256\n",
    ),
    (
        "template-check",
        "otel-endpoint-unconditional",
        "OTEL_EXPORTER_OTLP_ENDPOINT set unconditionally (every deployment would export to a collector that is not there)",
        "          OTEL_EXPORTER_OTLP_ENDPOINT: !If [ExportsOtel, !Ref OtelExporterEndpoint, !Ref AWS::NoValue]\n",
        "          OTEL_EXPORTER_OTLP_ENDPOINT: !Ref OtelExporterEndpoint\n",
    ),
    (
        "template-check",
        "max-in-flight-unconditional",
        "RELAY_MAX_IN_FLIGHT set unconditionally (the MaxInFlight default 0 would be refused at init, "
        "and no deployment would get the memory-derived cap)",
        "          RELAY_MAX_IN_FLIGHT: !If [HasMaxInFlight, !Ref MaxInFlight, !Ref AWS::NoValue]\n",
        "          RELAY_MAX_IN_FLIGHT: !Ref MaxInFlight\n",
    ),
    (
        "template-check",
        "otel-layer-unconditional",
        "the collector layer listed unconditionally (an empty layer ARN with the default parameters)",
        "      Layers: !If [HasOtelCollectorLayer, [!Ref OtelCollectorLayerArn], !Ref AWS::NoValue]\n",
        "      Layers: [!Ref OtelCollectorLayerArn]\n",
    ),
    (
        "template-check",
        "events-pattern-needs-colon",
        "FilterEvents AllowedPattern back to the one requiring ':' (refuses IntelligentTiering, LifecycleTransition)",
        r"""    AllowedPattern: '^(?!s3:\*)(s3:)?[A-Za-z][A-Za-z0-9]*(:[A-Za-z][A-Za-z0-9]*)*(:?\*)?(,(?!s3:\*)(s3:)?[A-Za-z][A-Za-z0-9]*(:[A-Za-z][A-Za-z0-9]*)*(:?\*)?)*$'""",
        r"""    AllowedPattern: '^(s3:)?[A-Za-z][A-Za-z0-9]*:[A-Za-z0-9:]*\*?(,(s3:)?[A-Za-z][A-Za-z0-9]*:[A-Za-z0-9:]*\*?)*$'""",
    ),
]


def main() -> int:
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    os.makedirs(out, exist_ok=True)
    for kind, name, why, old, new in BREAKAGES:
        if text.count(old) != 1:
            print(f"make_broken_templates: {old!r} occurs {text.count(old)} times in {src}, expected once", file=sys.stderr)
            return 1
        path = os.path.join(out, f"broken-{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new))
        print(f"{kind}\t{path}\t{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
