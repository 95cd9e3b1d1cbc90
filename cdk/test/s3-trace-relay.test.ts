// Assertions on the synthesized template (aws-cdk-lib/assertions), run with node's test runner:
//   node --import tsx --test test/s3-trace-relay.test.ts
// Bundling is skipped here (context aws:cdk:bundling-stacks = []), so no Rust build runs;
// `cdk synth` (scripts/check-deploy.sh) does the real cargo lambda build.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, CfnParameter, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { RelayExampleStack, architectureFromContext, optionalStringContext } from '../bin/app';
import {
  DEFAULT_EVENT_SOURCE,
  DEFAULT_MEMORY_SIZE_MB,
  DEFAULT_OTEL_COLLECTOR_ENDPOINT,
  S3TraceRelay,
  S3TraceRelayProps,
  sourceQueueVisibilityTimeout,
} from '../lib/s3-trace-relay';

function newApp(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

function exampleTemplate(architecture?: lambda.Architecture): Template {
  return Template.fromStack(new RelayExampleStack(newApp(), 'Example', { architecture }));
}

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** Every statement of every IAM policy in the template (inline AWS::IAM::Policy documents). */
function statements(template: Template): Statement[] {
  const out: Statement[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const st = policy.Properties.PolicyDocument.Statement;
    out.push(...(Array.isArray(st) ? st : [st]));
  }
  return out;
}

const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** The relay function's properties (the other function is CDK's bucket-notifications handler). */
function relayFunctionProps(template: Template): any {
  const fns = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'provided.al2023' } }));
  assert.equal(fns.length, 1, 'expected one provided.al2023 function');
  return fns[0].Properties;
}

/** A stack with a bucket and one relay built from `props` (bucket and targets defaulted). */
function relayStack(props: (stack: Stack) => Partial<S3TraceRelayProps> = () => ({})): { stack: Stack; template: () => Template } {
  const stack = new Stack(newApp(), 'Relay');
  const extra = props(stack);
  new S3TraceRelay(stack, 'Relay', {
    bucket: new s3.Bucket(stack, 'Bucket'),
    targets: [new sqs.Queue(stack, 'Target', { encryption: sqs.QueueEncryption.SQS_MANAGED })],
    ...extra,
  });
  return { stack, template: () => Template.fromStack(stack) };
}

function logicalId(template: Template, type: string, match: (props: any) => boolean): string {
  const found = Object.entries(template.findResources(type)).filter(([, r]) => match(r.Properties ?? {}));
  assert.equal(found.length, 1, `expected one ${type}`);
  return found[0][0];
}

describe('S3TraceRelay in the example stack', () => {
  const template = exampleTemplate();

  it('runs the Rust binary on provided.al2023 / arm64 with active tracing', () => {
    template.resourceCountIs('AWS::Lambda::Function', 2); // relay + CDK's bucket-notifications handler
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Architectures: ['arm64'],
      Handler: 'bootstrap',
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      Environment: { Variables: { RELAY_TARGETS: Match.anyValue() } },
    });
  });

  it('lists every target with the event filter in RELAY_TARGETS', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'provided.al2023' },
    }))[0];
    const targets = JSON.stringify(fn.Properties.Environment.Variables.RELAY_TARGETS);
    // Fn::Join of the queue URLs (Ref) and the topic ARN (Ref), each followed by the filter.
    for (const id of ['TargetQueue', 'TargetFifoQueue', 'TargetTopic']) {
      assert.match(targets, new RegExp(`"Ref":"${id}[0-9A-F]{8}"`), targets);
    }
    assert.equal(targets.split('?events=ObjectCreated:*,ObjectRemoved:*').length - 1, 3, targets);
  });

  it('has the bucket invoke the function for created and removed objects', () => {
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          Match.objectLike({ Events: ['s3:ObjectCreated:*'] }),
          Match.objectLike({ Events: ['s3:ObjectRemoved:*'] }),
        ],
      },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 's3.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
      SourceArn: Match.anyValue(),
    });
  });

  it('retries async invocations twice, then sends them to an SQS on-failure destination', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      Qualifier: '$LATEST',
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('OnFailureQueue'), 'Arn'] } },
      },
    });
  });

  it('consumes the source queue with ReportBatchItemFailures; the source queue has a DLQ', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
  });

  it('traces the SNS topic actively', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { TracingConfig: 'Active' });
  });

  it('grants sqs/sns actions only on exact ARNs, never on wildcards', () => {
    const st = statements(template);
    const messaging = st.filter((s) => asList(s.Action).some((a) => /^(sqs|sns):/.test(a)));
    assert.ok(messaging.length > 0, 'no sqs/sns statements found');
    for (const s of messaging) {
      for (const action of asList(s.Action)) {
        assert.ok(!action.includes('*'), `wildcard action ${action}`);
      }
      for (const resource of asList(s.Resource)) {
        assert.notEqual(resource, '*', `${JSON.stringify(s.Action)} on "*"`);
        assert.ok(!JSON.stringify(resource).includes('*'), `${JSON.stringify(s.Action)} on ${JSON.stringify(resource)}`);
      }
    }
    const actions = new Set(messaging.flatMap((s) => asList(s.Action)));
    assert.ok(actions.has('sqs:SendMessage'), [...actions].join(','));
    assert.ok(actions.has('sns:Publish'), [...actions].join(','));
  });

  it('grants sns:Publish exactly on the target topic and sqs:SendMessage exactly on target and failure queues', () => {
    const st = statements(template);
    const publish = st.filter((s) => asList(s.Action).includes('sns:Publish'));
    assert.deepEqual(publish.flatMap((s) => asList(s.Resource)), [{ Ref: logicalId(template, 'AWS::SNS::Topic', () => true) }]);
    const sendTo = st
      .filter((s) => asList(s.Action).includes('sqs:SendMessage'))
      .flatMap((s) => asList(s.Resource))
      .map((r) => (r as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0])
      .sort();
    const queues = Object.keys(template.findResources('AWS::SQS::Queue'))
      .filter((id) => /TargetQueue|TargetFifoQueue|OnFailureQueue/.test(id))
      .sort();
    assert.deepEqual(sendTo, queues);
  });

  it('grants no KMS permission: its targets use SSE-SQS and the AWS managed SNS key', () => {
    const kmsActions = statements(template).flatMap((s) => asList(s.Action)).filter((a) => a.startsWith('kms:'));
    assert.deepEqual(kmsActions, []);
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  it('denies non-TLS access to every queue (enforceSSL), its own on-failure queue included', () => {
    const queueIds = Object.keys(template.findResources('AWS::SQS::Queue'));
    assert.equal(queueIds.length, 6, queueIds.join(','));
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    for (const id of queueIds) {
      const denies = policies
        .filter((p) => p.Properties.Queues.some((q: any) => q.Ref === id))
        .flatMap((p) => asList(p.Properties.PolicyDocument.Statement))
        .filter(
          (s: any) =>
            s.Effect === 'Deny' &&
            s.Action === 'sqs:*' &&
            s.Condition?.Bool?.['aws:SecureTransport'] === 'false' &&
            JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }),
        );
      assert.equal(denies.length, 1, `${id}: no Deny for aws:SecureTransport false`);
    }
  });

  it('derives the source queue visibility timeout from the function timeout (6 x 30 s + 1 s window)', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 181, RedrivePolicy: Match.anyValue() });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { MaximumBatchingWindowInSeconds: 1 });
    assert.equal(relayFunctionProps(template).Timeout, 30);
  });

  it('leaves concurrency unset and memory at the default', () => {
    const fn = relayFunctionProps(template);
    assert.equal(fn.ReservedConcurrentExecutions, undefined);
    assert.equal(fn.MemorySize, DEFAULT_MEMORY_SIZE_MB);
    assert.equal(DEFAULT_MEMORY_SIZE_MB, 256);
    const esm = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'))[0];
    assert.equal(esm.Properties.ScalingConfig, undefined);
  });
});

describe('S3TraceRelay options', () => {
  it('builds for x86_64 when asked (the relayArchitecture context flag)', () => {
    exampleTemplate(architectureFromContext('x86_64')).hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Architectures: ['x86_64'],
    });
    assert.equal(architectureFromContext(undefined), lambda.Architecture.ARM_64);
    assert.throws(() => architectureFromContext('riscv'), /arm64 or x86_64/);
  });

  it('applies key filters to the notification and to every target', () => {
    const stack = new Stack(newApp(), 'Filtered');
    const relay = new S3TraceRelay(stack, 'Relay', {
      bucket: new s3.Bucket(stack, 'Bucket'),
      targets: [new sqs.Queue(stack, 'Q'), new sns.Topic(stack, 'T')],
      filters: { prefix: 'images/', suffix: '.jpg', events: [s3.EventType.OBJECT_CREATED_PUT] },
    });
    const template = Template.fromStack(stack);
    const notifications = Object.values(template.findResources('Custom::S3BucketNotifications'));
    assert.equal(notifications.length, 1);
    const configs = notifications[0].Properties.NotificationConfiguration.LambdaFunctionConfigurations;
    assert.equal(configs.length, 1);
    assert.deepEqual(configs[0].Events, ['s3:ObjectCreated:Put']);
    const rules = [...configs[0].Filter.Key.FilterRules].sort((a, b) => a.Name.localeCompare(b.Name));
    assert.deepEqual(rules, [
      { Name: 'prefix', Value: 'images/' },
      { Name: 'suffix', Value: '.jpg' },
    ]);
    const resolved = JSON.stringify(stack.resolve(relay.relayTargets));
    assert.equal(resolved.split('?prefix=images/&suffix=.jpg&events=ObjectCreated:Put').length - 1, 2, resolved);
  });

  it('rejects filter values that would break RELAY_TARGETS, and an empty target list', () => {
    const stack = new Stack(newApp(), 'Bad');
    const bucket = new s3.Bucket(stack, 'Bucket');
    assert.throws(
      () => new S3TraceRelay(stack, 'R1', { bucket, targets: [new sqs.Queue(stack, 'Q')], filters: { prefix: 'a&b' } }),
      /must not contain/,
    );
    assert.throws(() => new S3TraceRelay(stack, 'R2', { bucket, targets: [] }), /at least one target/);
  });
});

describe('S3TraceRelay event bus and state machine targets', () => {
  /** A stack relaying to one bus and one state machine (and nothing else). */
  function busAndMachine(eventSource?: string): { stack: Stack; relay: S3TraceRelay; template: Template } {
    const stack = new Stack(newApp(), 'Targets');
    const bus = new events.EventBus(stack, 'Bus');
    const machine = new sfn.StateMachine(stack, 'Machine', {
      definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Done')),
    });
    const relay = new S3TraceRelay(stack, 'Relay', {
      bucket: new s3.Bucket(stack, 'Bucket'),
      targets: [bus, machine],
      eventSource,
    });
    return { stack, relay, template: Template.fromStack(stack) };
  }

  it('grants exactly PutEvents and DescribeEventBus on the bus and StartExecution on the state machine', () => {
    const { template } = busAndMachine();
    const bus = logicalId(template, 'AWS::Events::EventBus', () => true);
    const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', () => true);
    const granted = statements(template).filter((st) =>
      asList(st.Action).some((a) => a.startsWith('events:') || a.startsWith('states:')),
    );
    assert.deepEqual(
      granted.map((st) => ({ Action: asList(st.Action).sort(), Resource: st.Resource })).sort((a, b) =>
        a.Action[0].localeCompare(b.Action[0]),
      ),
      [
        { Action: ['events:DescribeEventBus', 'events:PutEvents'], Resource: { 'Fn::GetAtt': [bus, 'Arn'] } },
        { Action: ['states:StartExecution'], Resource: { Ref: machine } },
      ],
    );
  });

  it('names the bus and the state machine by ARN in RELAY_TARGETS, the bus with the default source', () => {
    const { stack, relay } = busAndMachine();
    const resolved = JSON.stringify(stack.resolve(relay.relayTargets));
    assert.match(resolved, /"Arn"\]\},"\?events=ObjectCreated:\*,ObjectRemoved:\*,"/, resolved);
    assert.ok(!resolved.includes('source='), `the relay's default source ${DEFAULT_EVENT_SOURCE} needs no option: ${resolved}`);
  });

  it('passes an event source to bus targets only, and refuses the reserved aws.* sources', () => {
    const { stack, relay } = busAndMachine('uploads.relay');
    const resolved = JSON.stringify(stack.resolve(relay.relayTargets));
    assert.equal(resolved.split('&source=uploads.relay').length - 1, 1, resolved);
    assert.throws(() => busAndMachine('aws.s3'), /reserve/);
    assert.throws(() => busAndMachine(''), /1-256 characters/);
  });
});

describe('S3TraceRelay source queue visibility timeout', () => {
  it('is 6 x timeout + batching window, capped at 12 hours', () => {
    assert.equal(sourceQueueVisibilityTimeout().toSeconds(), 181);
    assert.equal(sourceQueueVisibilityTimeout(Duration.seconds(60)).toSeconds(), 361);
    assert.equal(sourceQueueVisibilityTimeout(Duration.minutes(15)).toSeconds(), 5401);
    assert.equal(sourceQueueVisibilityTimeout(Duration.hours(3)).toSeconds(), 43200);
  });

  it('throws when a source queue defined in the app has a shorter visibility timeout', () => {
    assert.throws(
      () => relayStack((stack) => ({ sourceQueue: new sqs.Queue(stack, 'Source', { visibilityTimeout: Duration.seconds(180) }) })),
      /visibility timeout of 180 s; the relay needs at least 181 s = 6 x the function timeout \(30 s\)/,
    );
    // The old fixed 180 s with a longer function timeout.
    assert.throws(
      () =>
        relayStack((stack) => ({
          timeout: Duration.seconds(180),
          sourceQueue: new sqs.Queue(stack, 'Source', { visibilityTimeout: Duration.seconds(180) }),
        })),
      /needs at least 1081 s/,
    );
    // SQS's default of 30 s when the queue does not set one.
    assert.throws(() => relayStack((stack) => ({ sourceQueue: new sqs.Queue(stack, 'Source') })), /visibility timeout of 30 s/);
  });

  it('accepts the derived visibility timeout and skips queues whose timeout it cannot know', () => {
    const timeout = Duration.seconds(90);
    relayStack((stack) => ({
      timeout,
      sourceQueue: new sqs.Queue(stack, 'Source', { visibilityTimeout: sourceQueueVisibilityTimeout(timeout) }),
    }))
      .template()
      .hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 541 });
    // Imported: the visibility timeout is not in this app, so no check (documented on sourceQueue).
    relayStack((stack) => ({
      sourceQueue: sqs.Queue.fromQueueArn(stack, 'Imported', 'arn:aws:sqs:us-east-1:111122223333:source'),
    }))
      .template()
      .resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
  });
});

describe('S3TraceRelay KMS keys of encrypted targets', () => {
  const IMPORTED_KEY = 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555';

  function kmsStatements(template: Template): Statement[] {
    return statements(template).filter((s) => asList(s.Action).some((a) => a.startsWith('kms:')));
  }

  it('grants exactly kms:GenerateDataKey and kms:Decrypt on exactly the targets\' keys and targetKeys', () => {
    const { template } = relayStack((stack) => {
      const queueKey = new kms.Key(stack, 'QueueKey');
      const topicKey = new kms.Key(stack, 'TopicKey');
      return {
        targets: [
          new sqs.Queue(stack, 'KmsQueue', { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: queueKey }),
          new sns.Topic(stack, 'KmsTopic', { masterKey: topicKey }),
          // Imported without its key: the key comes through targetKeys.
          sqs.Queue.fromQueueArn(stack, 'ImportedQueue', 'arn:aws:sqs:us-east-1:111122223333:imported'),
          // AWS managed keys need no grant.
          new sqs.Queue(stack, 'AwsManagedKeyQueue', { encryption: sqs.QueueEncryption.KMS_MANAGED }),
          new sns.Topic(stack, 'AwsManagedKeyTopic', { masterKey: kms.Alias.fromAliasName(stack, 'AwsSns', 'alias/aws/sns') }),
          new sqs.Queue(stack, 'SqsManagedQueue', { encryption: sqs.QueueEncryption.SQS_MANAGED }),
        ],
        targetKeys: [kms.Key.fromKeyArn(stack, 'ImportedKey', IMPORTED_KEY)],
      };
    });
    const t = template();
    const st = kmsStatements(t);
    for (const s of st) {
      assert.deepEqual([...asList(s.Action)].sort(), ['kms:Decrypt', 'kms:GenerateDataKey'], JSON.stringify(s));
      assert.equal(s.Effect, 'Allow');
    }
    const keyIds = Object.keys(t.findResources('AWS::KMS::Key')).sort();
    assert.equal(keyIds.length, 2);
    const resources = st.flatMap((s) => asList(s.Resource)).map((r) => JSON.stringify(r)).sort();
    const want = [...keyIds.map((id) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] })), JSON.stringify(IMPORTED_KEY)].sort();
    assert.deepEqual(resources, want);
    // The sqs/sns grants themselves carry no KMS side effects (grantSendMessages would add
    // kms:Encrypt, kms:ReEncrypt*, kms:GenerateDataKey*).
    const allActions = statements(t).flatMap((s) => asList(s.Action));
    assert.ok(!allActions.some((a) => /^kms:(Encrypt|ReEncrypt|GenerateDataKey\*)/.test(a)), allActions.join(','));
  });

  it('grants no KMS permission without keys', () => {
    const { template } = relayStack((stack) => ({
      targets: [new sqs.Queue(stack, 'Plain'), new sns.Topic(stack, 'PlainTopic')],
    }));
    assert.deepEqual(kmsStatements(template()), []);
  });

  it('grants on the key behind an alias defined in the app, and refuses an imported customer alias', () => {
    const { template } = relayStack((stack) => {
      const key = new kms.Key(stack, 'AliasedKey');
      return {
        targets: [new sns.Topic(stack, 'Topic', { masterKey: new kms.Alias(stack, 'Alias', { aliasName: 'alias/relay', targetKey: key }) })],
      };
    });
    const t = template();
    const keyId = Object.keys(t.findResources('AWS::KMS::Key'))[0];
    assert.deepEqual(kmsStatements(t).flatMap((s) => asList(s.Resource)), [{ 'Fn::GetAtt': [keyId, 'Arn'] }]);
    assert.throws(
      () =>
        relayStack((stack) => ({
          targets: [new sns.Topic(stack, 'Topic', { masterKey: kms.Alias.fromAliasName(stack, 'Imported', 'alias/theirs') })],
        })),
      /KMS alias alias\/theirs of a target: pass its key instead/,
    );
  });

  it('uses the key of an imported queue or topic when the import carries it', () => {
    const queueKey = 'arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-0000-0000-0000-000000000001';
    const topicKey = 'arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-0000-0000-0000-000000000002';
    const { template } = relayStack((stack) => ({
      targets: [
        sqs.Queue.fromQueueAttributes(stack, 'Q', { queueArn: 'arn:aws:sqs:us-east-1:111122223333:q', keyArn: queueKey }),
        sns.Topic.fromTopicAttributes(stack, 'T', { topicArn: 'arn:aws:sns:us-east-1:111122223333:t', keyArn: topicKey }),
      ],
    }));
    const st = kmsStatements(template());
    assert.deepEqual(st.flatMap((s) => asList(s.Resource)).sort(), [queueKey, topicKey]);
    for (const s of st) assert.deepEqual([...asList(s.Action)].sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
  });
});

describe('S3TraceRelay concurrency and memory', () => {
  it('sets reserved concurrency when asked', () => {
    const fn = relayFunctionProps(relayStack(() => ({ reservedConcurrency: 25 })).template());
    assert.equal(fn.ReservedConcurrentExecutions, 25);
  });

  it('sets ScalingConfig.MaximumConcurrency on the SQS event source', () => {
    const template = relayStack((stack) => ({
      sourceQueue: new sqs.Queue(stack, 'Source', { visibilityTimeout: sourceQueueVisibilityTimeout() }),
      maxConcurrency: 5,
      reservedConcurrency: 10,
    })).template();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    assert.equal(relayFunctionProps(template).ReservedConcurrentExecutions, 10);
  });

  it('rejects maxConcurrency out of 2-1000, without a source queue, or above reservedConcurrency', () => {
    const source = (stack: Stack) => new sqs.Queue(stack, 'Source', { visibilityTimeout: sourceQueueVisibilityTimeout() });
    assert.throws(() => relayStack((stack) => ({ sourceQueue: source(stack), maxConcurrency: 1 })), /maxConcurrency must be an integer from 2 to 1000/);
    assert.throws(() => relayStack((stack) => ({ sourceQueue: source(stack), maxConcurrency: 1001 })), /from 2 to 1000/);
    assert.throws(() => relayStack(() => ({ maxConcurrency: 5 })), /needs sourceQueue/);
    assert.throws(
      () => relayStack((stack) => ({ sourceQueue: source(stack), maxConcurrency: 20, reservedConcurrency: 10 })),
      /reservedConcurrency \(10\) is below maxConcurrency \(20\)/,
    );
    assert.throws(() => relayStack(() => ({ reservedConcurrency: 2.5 })), /reservedConcurrency must be an integer/);
  });

  it('uses DEFAULT_MEMORY_SIZE_MB unless memorySize is given', () => {
    assert.equal(relayFunctionProps(relayStack().template()).MemorySize, DEFAULT_MEMORY_SIZE_MB);
    assert.equal(relayFunctionProps(relayStack(() => ({ memorySize: 512 })).template()).MemorySize, 512);
  });
});

describe('S3TraceRelay OpenTelemetry collector layer', () => {
  const LAYER_ARN = 'arn:aws:lambda:us-east-1:184161586896:layer:opentelemetry-collector-arm64-0_19_0:1';
  const layer = (stack: Stack) => lambda.LayerVersion.fromLayerVersionArn(stack, 'Collector', LAYER_ARN);

  /** The relay function's OTEL_* and OPENTELEMETRY_* variables. */
  function otelVariables(fn: any): Record<string, unknown> {
    const vars: Record<string, unknown> = fn.Environment?.Variables ?? {};
    return Object.fromEntries(Object.entries(vars).filter(([k]) => /^(OTEL_|OPENTELEMETRY_)/.test(k)));
  }

  it('adds no layer and no OTEL_* variable by default, in the example stack too', () => {
    for (const fn of [relayFunctionProps(relayStack().template()), relayFunctionProps(exampleTemplate())]) {
      assert.equal(fn.Layers, undefined);
      assert.deepEqual(otelVariables(fn), {});
      assert.ok(fn.Environment.Variables.RELAY_TARGETS, 'RELAY_TARGETS still set');
    }
  });

  it('adds the layer and points OTEL_EXPORTER_OTLP_ENDPOINT at its OTLP/HTTP receiver', () => {
    const { template } = relayStack((stack) => ({ otelCollectorLayer: layer(stack) }));
    const fn = relayFunctionProps(template());
    assert.deepEqual(fn.Layers, [LAYER_ARN]);
    assert.deepEqual(otelVariables(fn), { OTEL_EXPORTER_OTLP_ENDPOINT: DEFAULT_OTEL_COLLECTOR_ENDPOINT });
    assert.equal(DEFAULT_OTEL_COLLECTOR_ENDPOINT, 'http://localhost:4318');
  });

  it('passes otelEndpoint and otelCollectorConfigUri with the layer', () => {
    const { template } = relayStack((stack) => ({
      otelCollectorLayer: layer(stack),
      otelEndpoint: 'http://127.0.0.1:4318',
      otelCollectorConfigUri: '/var/task/collector.yaml',
    }));
    const fn = relayFunctionProps(template());
    assert.deepEqual(fn.Layers, [LAYER_ARN]);
    assert.deepEqual(otelVariables(fn), {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OPENTELEMETRY_COLLECTOR_CONFIG_URI: '/var/task/collector.yaml',
    });
  });

  it('sets only the endpoint variable for otelEndpoint without a layer', () => {
    const fn = relayFunctionProps(relayStack(() => ({ otelEndpoint: 'https://otlp.example.com' })).template());
    assert.equal(fn.Layers, undefined);
    assert.deepEqual(otelVariables(fn), { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com' });
  });

  it('adds no IAM permission for the layer', () => {
    const without = statements(relayStack().template());
    const withLayer = statements(
      relayStack((stack) => ({ otelCollectorLayer: layer(stack), otelCollectorConfigUri: 's3://b.s3.us-east-1.amazonaws.com/c.yaml' })).template(),
    );
    // The same statements as without the layer (the only s3: one is CDK's notifications handler's
    // s3:PutBucketNotification): no lambda:GetLayerVersion, no s3:GetObject for the config URI.
    assert.deepEqual(withLayer, without);
    for (const s of withLayer) {
      assert.ok(!asList(s.Action).some((a) => /^lambda:|^s3:Get/.test(a)), JSON.stringify(s));
      assert.ok(!JSON.stringify(s).includes('layer'), JSON.stringify(s));
    }
  });

  it('rejects an endpoint that is not an http(s) URL, with the construct path', () => {
    for (const otelEndpoint of ['localhost:4318', 'grpc://localhost:4317', '', 'http://', 'http://local host:4318']) {
      assert.throws(() => relayStack(() => ({ otelEndpoint })), /Relay\/Relay: otelEndpoint .* must be an http:\/\/ or https:\/\/ URL/, otelEndpoint);
    }
    // A token is not checked.
    assert.doesNotThrow(() => relayStack((stack) => ({ otelEndpoint: new CfnParameter(stack, 'Endpoint').valueAsString })));
  });

  it('rejects otelCollectorConfigUri without a layer, or empty', () => {
    assert.throws(() => relayStack(() => ({ otelCollectorConfigUri: '/var/task/collector.yaml' })), /needs otelCollectorLayer/);
    assert.throws(
      () => relayStack((stack) => ({ otelCollectorLayer: layer(stack), otelCollectorConfigUri: '' })),
      /otelCollectorConfigUri "" must be a non-empty path or URI/,
    );
  });

  it('takes the layer, endpoint and config URI from the example app\'s context values', () => {
    const template = Template.fromStack(
      new RelayExampleStack(newApp(), 'ExampleOtel', {
        otelCollectorLayerArn: LAYER_ARN,
        otelCollectorConfigUri: '/var/task/collector.yaml',
      }),
    );
    const fn = relayFunctionProps(template);
    assert.deepEqual(fn.Layers, [LAYER_ARN]);
    assert.deepEqual(otelVariables(fn), {
      OTEL_EXPORTER_OTLP_ENDPOINT: DEFAULT_OTEL_COLLECTOR_ENDPOINT,
      OPENTELEMETRY_COLLECTOR_CONFIG_URI: '/var/task/collector.yaml',
    });
    assert.equal(optionalStringContext('otelEndpoint', undefined), undefined);
    assert.equal(optionalStringContext('otelEndpoint', ''), undefined);
    assert.equal(optionalStringContext('otelEndpoint', 'http://x:4318'), 'http://x:4318');
    assert.throws(() => optionalStringContext('otelEndpoint', 4318), /context otelEndpoint must be a string/);
  });
});
