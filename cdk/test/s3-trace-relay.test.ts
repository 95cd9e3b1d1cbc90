// Assertions on the synthesized template (aws-cdk-lib/assertions), run with node's test runner:
//   node --import tsx --test test/s3-trace-relay.test.ts
// Bundling is skipped here (context aws:cdk:bundling-stacks = []), so no Rust build runs;
// `cdk synth` (scripts/check-deploy.sh) does the real cargo lambda build.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RelayExampleStack, architectureFromContext } from '../bin/app';
import { S3TraceRelay } from '../lib/s3-trace-relay';

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
