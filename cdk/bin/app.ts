#!/usr/bin/env node
// Example app: a source bucket, a standard and a FIFO target queue, an actively traced SNS topic
// with a subscribed queue, and the relay between them.
//
//   npx cdk synth                              # arm64 (default, what Lambda should run)
//   npx cdk synth -c relayArchitecture=x86_64  # when no aarch64 Rust std is installed locally
//   npx cdk deploy
//   npx cdk deploy -c otelCollectorLayerArn=arn:aws:lambda:<region>:184161586896:layer:opentelemetry-collector-arm64-<version>:1
//                  [-c otelCollectorConfigUri=/var/task/collector.yaml] [-c otelEndpoint=https://...]
//     # OpenTelemetry export through a collector extension layer (or to an endpoint without one)
//
// Bundling runs `cargo lambda build --release --arm64 …` locally when `cargo lambda` works
// (e.g. with the repository's .venv/bin on PATH), otherwise CDK falls back to Docker.
import { App, CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { S3TraceRelay, sourceQueueVisibilityTimeout } from '../lib/s3-trace-relay';

/** Reads the `relayArchitecture` context value: arm64 (default) or x86_64. */
export function architectureFromContext(value: unknown): lambda.Architecture {
  if (value === undefined || value === 'arm64') return lambda.Architecture.ARM_64;
  if (value === 'x86_64') return lambda.Architecture.X86_64;
  throw new Error(`context relayArchitecture must be arm64 or x86_64, got ${JSON.stringify(value)}`);
}

/** Reads an optional string context value (`-c name=value`); empty means not given. */
export function optionalStringContext(name: string, value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`context ${name} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

export interface RelayExampleStackProps extends StackProps {
  readonly architecture?: lambda.Architecture;
  /** ARN of an OpenTelemetry collector extension layer version (S3TraceRelayProps.otelCollectorLayer). */
  readonly otelCollectorLayerArn?: string;
  /** S3TraceRelayProps.otelEndpoint. */
  readonly otelEndpoint?: string;
  /** S3TraceRelayProps.otelCollectorConfigUri. */
  readonly otelCollectorConfigUri?: string;
}

export class RelayExampleStack extends Stack {
  constructor(scope: Construct, id: string, props: RelayExampleStackProps = {}) {
    super(scope, id, props);

    const bucket = new s3.Bucket(this, 'SourceBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const queue = new sqs.Queue(this, 'TargetQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const fifoQueue = new sqs.Queue(this, 'TargetFifoQueue', {
      fifo: true,
      // The relay sets MessageDeduplicationId and MessageGroupId itself.
      contentBasedDeduplication: false,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    // Active tracing: SNS records segments for sampled traces (needs an X-Ray resource policy
    // allowing sns.amazonaws.com) and passes X-Amzn-Trace-Id on to its subscriptions.
    // Encrypted at rest with the AWS managed key, as in template.yaml (see the comment on its
    // TargetTopic for what that key allows): SNS decrypts before delivering to the subscribed
    // SSE-SQS queue, and the relay needs no KMS grant for it. Requests without TLS are denied.
    const topic = new sns.Topic(this, 'TargetTopic', {
      tracingConfig: sns.TracingConfig.ACTIVE,
      masterKey: kms.Alias.fromAliasName(this, 'AwsManagedSnsKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    const subscriber = new sqs.Queue(this, 'TopicSubscriberQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    topic.addSubscription(new subscriptions.SqsSubscription(subscriber, { rawMessageDelivery: true }));

    // Alternative wiring (S3 -> SQS -> relay): a source queue with a DLQ, its visibility timeout
    // derived from the relay's (default) function timeout.
    const sourceDlq = new sqs.Queue(this, 'SourceDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
      enforceSSL: true,
    });
    const sourceQueue = new sqs.Queue(this, 'SourceQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      visibilityTimeout: sourceQueueVisibilityTimeout(),
      deadLetterQueue: { queue: sourceDlq, maxReceiveCount: 5 },
      enforceSSL: true,
    });

    const relay = new S3TraceRelay(this, 'Relay', {
      bucket,
      targets: [queue, fifoQueue, topic],
      filters: { events: [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED] },
      sourceQueue,
      architecture: props.architecture,
      otelCollectorLayer: props.otelCollectorLayerArn
        ? lambda.LayerVersion.fromLayerVersionArn(this, 'OtelCollectorLayer', props.otelCollectorLayerArn)
        : undefined,
      otelEndpoint: props.otelEndpoint,
      otelCollectorConfigUri: props.otelCollectorConfigUri,
    });

    new CfnOutput(this, 'RelayFunctionName', { value: relay.function.functionName });
    new CfnOutput(this, 'SourceBucketName', { value: bucket.bucketName });
    new CfnOutput(this, 'SourceQueueUrl', { value: sourceQueue.queueUrl });
    new CfnOutput(this, 'TargetQueueUrl', { value: queue.queueUrl });
    new CfnOutput(this, 'TargetFifoQueueUrl', { value: fifoQueue.queueUrl });
    new CfnOutput(this, 'TargetTopicArn', { value: topic.topicArn });
    new CfnOutput(this, 'TopicSubscriberQueueUrl', { value: subscriber.queueUrl });
    new CfnOutput(this, 'OnFailureQueueUrl', { value: relay.onFailureQueue.queueUrl });
  }
}

if (require.main === module) {
  const app = new App();
  new RelayExampleStack(app, 'S3TraceRelayExample', {
    architecture: architectureFromContext(app.node.tryGetContext('relayArchitecture')),
    otelCollectorLayerArn: optionalStringContext('otelCollectorLayerArn', app.node.tryGetContext('otelCollectorLayerArn')),
    otelEndpoint: optionalStringContext('otelEndpoint', app.node.tryGetContext('otelEndpoint')),
    otelCollectorConfigUri: optionalStringContext('otelCollectorConfigUri', app.node.tryGetContext('otelCollectorConfigUri')),
  });
  app.synth();
}
