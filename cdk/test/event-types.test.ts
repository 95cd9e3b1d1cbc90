// Every member of aws-cdk-lib's s3.EventType, enumerated from the installed package (not a copied
// list), must pass the S3TraceRelay construct, synthesize, be accepted by the relay's own
// configuration parser and route a record carrying that event name to every target:
//   node --import tsx --test test/event-types.test.ts
// The relay side is target/debug/examples/route_check (examples/route_check.rs), built once in
// `before` with `cargo build --quiet --example route_check` from the repository root; it runs the
// relay's RelayConfig parser and routing on the synthesized function environment. Bundling is
// skipped (context aws:cdk:bundling-stacks = []), so no Lambda build runs; no network, no AWS.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { S3TraceRelay } from '../lib/s3-trace-relay';

const repo = path.join(__dirname, '..', '..');
const targetDir = path.resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target');
const routeCheckBin = path.join(targetDir, 'debug', 'examples', 'route_check');

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const PREFIX = 'uploads/';
const SUFFIX = '.txt';
const KEY = 'uploads/report 2026.txt'; // passes the prefix and suffix filters
const OTHER_KEY = 'downloads/report 2026.txt'; // does not
const UNRELATED_EVENT = 'NoSuchCategory:Example';

/** [enum member name, value] of every s3.EventType member in the installed aws-cdk-lib. */
const EVENT_TYPES = Object.entries(s3.EventType) as [string, s3.EventType][];

function newApp(): App {
  return new App({ context: { 'aws:cdk:bundling-stacks': [] } });
}

/**
 * The event name of a record the member stands for: without `s3:`; a trailing `*` completed with
 * a concrete name (`s3:ObjectCreated:*` -> `ObjectCreated:Example`).
 */
function recordEventName(eventType: string): string {
  return eventType.replace(/^s3:/, '').replace(/\*$/, 'Example');
}

/** For a category wildcard (`s3:ObjectCreated:*`), the bare category (`ObjectCreated`), which it also matches. */
function bareCategory(eventType: string): string | undefined {
  const m = /^(?:s3:)?(.+):\*$/.exec(eventType);
  return m ? m[1] : undefined;
}

type RouteCheck = { routes: Record<string, number[]>; targets: string[] };

/** Runs the relay's configuration parser and routing with exactly `env` as the environment. */
function routeCheck(env: Record<string, string>, key: string, eventNames: string[]): RouteCheck {
  const run = spawnSync(routeCheckBin, [key, ...eventNames], { env, encoding: 'utf8' });
  assert.equal(
    run.status,
    0,
    `the relay refuses its configuration (route_check exit ${run.status}): ${run.stderr || run.error}\n` +
      `RELAY_TARGETS=${env.RELAY_TARGETS}`,
  );
  return JSON.parse(run.stdout) as RouteCheck;
}

/** The relay function's resource (the other function is CDK's bucket-notifications handler). */
function relayFunction(template: Template): any {
  const fns = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'provided.al2023' } }));
  assert.equal(fns.length, 1, 'expected one provided.al2023 function');
  return fns[0];
}

/** The event lists of the bucket's Lambda notification configurations. */
function notifiedEvents(template: Template): { events: string[]; rules: { Name: string; Value: string }[] }[] {
  const notifications = Object.values(template.findResources('Custom::S3BucketNotifications'));
  assert.equal(notifications.length, 1, 'expected one Custom::S3BucketNotifications');
  const configs = notifications[0].Properties.NotificationConfiguration.LambdaFunctionConfigurations ?? [];
  return configs.map((c: any) => ({
    events: c.Events,
    rules: [...(c.Filter?.Key?.FilterRules ?? [])].sort((a: any, b: any) => a.Name.localeCompare(b.Name)),
  }));
}

const KEY_RULES = [
  { Name: 'prefix', Value: PREFIX },
  { Name: 'suffix', Value: SUFFIX },
];

/**
 * A stack with the relay on a new bucket, publishing to an imported standard queue, FIFO queue and
 * topic (fixed ARNs/URLs, so RELAY_TARGETS synthesizes to a plain string).
 */
function importedTargetsTemplate(events: s3.EventType[]): { template: Template; addresses: string[] } {
  const stack = new Stack(newApp(), 'EventTypes', { env: { account: ACCOUNT, region: REGION } });
  const queueUrl = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/relay-target`;
  const fifoUrl = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/relay-target.fifo`;
  const topicArn = `arn:aws:sns:${REGION}:${ACCOUNT}:relay-topic`;
  new S3TraceRelay(stack, 'Relay', {
    bucket: new s3.Bucket(stack, 'Bucket'),
    targets: [
      sqs.Queue.fromQueueAttributes(stack, 'Queue', { queueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:relay-target`, queueUrl }),
      sqs.Queue.fromQueueAttributes(stack, 'FifoQueue', {
        queueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:relay-target.fifo`,
        queueUrl: fifoUrl,
        fifo: true,
      }),
      sns.Topic.fromTopicArn(stack, 'Topic', topicArn),
    ],
    filters: { prefix: PREFIX, suffix: SUFFIX, events },
  });
  return { template: Template.fromStack(stack), addresses: [queueUrl, fifoUrl, topicArn] };
}

/** The function's environment with every value a plain string (as Lambda hands it to the relay). */
function plainEnvironment(fn: any): Record<string, string> {
  const vars = fn.Properties.Environment.Variables as Record<string, unknown>;
  for (const [name, value] of Object.entries(vars)) {
    assert.equal(typeof value, 'string', `${name} is not a plain string: ${JSON.stringify(value)}`);
  }
  return vars as Record<string, string>;
}

/** Resolves Fn::Join / Ref to a concrete string, with `refs` standing in for the deploy-time values. */
function concrete(value: unknown, refs: Record<string, string>): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, any>;
  if (v && Array.isArray(v['Fn::Join'])) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => concrete(p, refs)).join(separator);
  }
  if (v && typeof v.Ref === 'string' && v.Ref in refs) return refs[v.Ref];
  throw new Error(`no concrete value for ${JSON.stringify(value)}`);
}

/** Asserts that `names` route to every one of the `addresses`, in order, and that a mismatch routes nowhere. */
function assertRoutesEverywhere(env: Record<string, string>, addresses: string[], names: string[]): void {
  const result = routeCheck(env, KEY, [...names, UNRELATED_EVENT]);
  assert.deepEqual(result.targets, addresses, `targets the relay parsed from RELAY_TARGETS=${env.RELAY_TARGETS}`);
  const all = addresses.map((_, i) => i);
  for (const name of names) {
    assert.deepEqual(result.routes[name], all, `record ${name} of ${KEY} does not reach every target (RELAY_TARGETS=${env.RELAY_TARGETS})`);
  }
  // The events filter is in effect (not absent, which would match everything) ...
  assert.deepEqual(result.routes[UNRELATED_EVENT], [], `record ${UNRELATED_EVENT} was routed`);
  // ... and so are the key filters.
  const elsewhere = routeCheck(env, OTHER_KEY, names);
  for (const name of names) assert.deepEqual(elsewhere.routes[name], [], `record ${name} of ${OTHER_KEY} was routed`);
}

before(() => {
  const build = spawnSync('cargo', ['build', '--quiet', '--example', 'route_check'], { cwd: repo, encoding: 'utf8' });
  assert.equal(build.status, 0, `cargo build --example route_check failed (${build.error ?? `exit ${build.status}`}):\n${build.stderr}`);
});

describe('aws-cdk-lib s3.EventType', () => {
  it('is enumerated from the installed package and has the colon-less event types', () => {
    const values = EVENT_TYPES.map(([, v]) => v as string);
    assert.ok(values.length > 0, 'Object.values(s3.EventType) is empty');
    for (const expected of ['s3:ObjectCreated:*', 's3:IntelligentTiering', 's3:LifecycleTransition', 's3:ReducedRedundancyLostObject']) {
      assert.ok(values.includes(expected), `${expected} not in ${values.join(', ')}`);
    }
  });
});

describe('S3TraceRelay with each s3.EventType', () => {
  for (const [member, eventType] of EVENT_TYPES) {
    it(`${member} (${eventType})`, () => {
      const { template, addresses } = importedTargetsTemplate([eventType]);
      // The construct handed it to the bucket notification unchanged, with the key filters.
      assert.deepEqual(notifiedEvents(template), [{ events: [eventType], rules: KEY_RULES }]);
      const env = plainEnvironment(relayFunction(template));
      const names = [recordEventName(eventType)];
      const category = bareCategory(eventType);
      if (category) names.push(category);
      assertRoutesEverywhere(env, addresses, names);
    });
  }
});

describe('S3TraceRelay with every s3.EventType at once', () => {
  it('relays each of them from new queues and a topic (RELAY_TARGETS resolved from Fn::Join)', () => {
    const stack = new Stack(newApp(), 'AllEventTypes');
    const fifo = new sqs.Queue(stack, 'FifoQueue', { fifo: true });
    new S3TraceRelay(stack, 'Relay', {
      bucket: new s3.Bucket(stack, 'Bucket'),
      targets: [new sqs.Queue(stack, 'Queue'), fifo, new sns.Topic(stack, 'Topic')],
      filters: { prefix: PREFIX, suffix: SUFFIX, events: EVENT_TYPES.map(([, v]) => v) },
    });
    const template = Template.fromStack(stack);
    assert.deepEqual(
      notifiedEvents(template),
      EVENT_TYPES.map(([, v]) => ({ events: [v], rules: KEY_RULES })),
    );

    // Stand-ins for what Ref gives at deploy time: a queue's URL, a topic's ARN.
    const refs: Record<string, string> = {};
    const addressOf: Record<string, string> = {};
    for (const [id, queue] of Object.entries(template.findResources('AWS::SQS::Queue'))) {
      const name = queue.Properties?.FifoQueue ? `${id}.fifo` : id;
      refs[id] = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
    }
    for (const id of Object.keys(template.findResources('AWS::SNS::Topic'))) {
      refs[id] = `arn:aws:sns:${REGION}:${ACCOUNT}:${id}`;
    }
    for (const id of Object.keys(refs)) addressOf[id.replace(/[0-9A-F]{8}$/, '')] = refs[id];

    const vars = relayFunction(template).Properties.Environment.Variables as Record<string, unknown>;
    const env = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, concrete(v, refs)]));
    const names = EVENT_TYPES.flatMap(([, v]) => [recordEventName(v), bareCategory(v)]).filter((n): n is string => !!n);
    assertRoutesEverywhere(env, [addressOf.Queue, addressOf.FifoQueue, addressOf.Topic], [...new Set(names)]);
  });
});

describe('S3TraceRelay with event types outside s3.EventType', () => {
  it('accepts a well-formed future event type (s3:ObjectAnnotation:*)', () => {
    const future = 's3:ObjectAnnotation:*' as s3.EventType;
    const { template, addresses } = importedTargetsTemplate([future]);
    assert.deepEqual(notifiedEvents(template), [{ events: [future], rules: KEY_RULES }]);
    assertRoutesEverywhere(plainEnvironment(relayFunction(template)), addresses, ['ObjectAnnotation:Example', 'ObjectAnnotation']);
  });

  for (const malformed of ['Object Created:*', ':Put', 'ObjectCreated::Put', '9Lives', 's3:*', 'ObjectCreated:']) {
    it(`refuses ${JSON.stringify(malformed)} at synth time, as the relay would at init`, () => {
      assert.throws(() => importedTargetsTemplate([malformed as s3.EventType]), /is not an S3 event type/);
      const queue = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/q`;
      const run = spawnSync(routeCheckBin, [KEY], { env: { RELAY_TARGETS: `${queue}?events=${malformed}` }, encoding: 'utf8' });
      assert.equal(run.status, 1, `the relay accepts events=${malformed} (or route_check did not run: ${run.error}): ${run.stdout}`);
      assert.match(run.stderr, /event pattern/);
    });
  }

  for (const other of ['ObjectCreated:Put&suffix=.jpg', 'ObjectCreated:Put,ObjectRemoved:*', 'ObjectCreated:Put?prefix=a']) {
    it(`refuses ${JSON.stringify(other)}, which would change RELAY_TARGETS' meaning`, () => {
      assert.throws(() => importedTargetsTemplate([other as s3.EventType]), /is not an S3 event type/);
    });
  }
});
