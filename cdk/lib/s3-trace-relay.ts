import * as path from 'node:path';
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

/** Which records are relayed: applied by the bucket notification and by every relay target. */
export interface RelayFilters {
  /** Decoded key prefix, e.g. `images/`. No `&`, `?` or `,`. @default - any key */
  readonly prefix?: string;
  /** Decoded key suffix, e.g. `.jpg`. No `&`, `?` or `,`. @default - any key */
  readonly suffix?: string;
  /**
   * S3 event types the bucket notifies and the relay forwards.
   *
   * Every member of `s3.EventType` is accepted: category wildcards (`OBJECT_CREATED`,
   * `OBJECT_RESTORE`, `REPLICATION`, `LIFECYCLE_EXPIRATION`, `OBJECT_TAGGING`, ...), single event
   * types and the colon-less ones (`INTELLIGENT_TIERING`, `LIFECYCLE_TRANSITION`,
   * `REDUCED_REDUNDANCY_LOST_OBJECT`); test/event-types.test.ts checks each against the relay's
   * own parser. So is any well-formed event type newer than this aws-cdk-lib, e.g.
   * `'s3:ObjectAnnotation:*' as s3.EventType`: an optional `s3:`, then names (an ASCII letter,
   * then ASCII letters and digits) joined by `:`, optionally ending in `*`. Anything else throws
   * here rather than failing the function's init.
   * @default [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED]
   */
  readonly events?: s3.EventType[];
}

/**
 * Where the relay sends each record: an SQS queue, an SNS topic, an EventBridge event bus
 * (`PutEvents`, S3-shaped events) or a Step Functions state machine (one `StartExecution` per record).
 */
export type RelayTarget = sqs.IQueue | sns.ITopic | events.IEventBus | sfn.IStateMachine;

/** EventBridge `source` of the events the relay puts on a bus when `eventSource` is not given. */
export const DEFAULT_EVENT_SOURCE = 's3-trace-relay';

/** Function memory in MiB when `memorySize` is not given: the one place the construct sets it. */
export const DEFAULT_MEMORY_SIZE_MB = 256;
/** Function timeout when `timeout` is not given. */
export const DEFAULT_TIMEOUT = Duration.seconds(30);
/**
 * MaximumBatchingWindow of the SQS source's event source mapping: a message can wait this long
 * in a batch before the function starts, so it counts towards the source queue's visibility timeout.
 */
export const SOURCE_BATCHING_WINDOW = Duration.seconds(1);
/**
 * OTLP/HTTP endpoint of an OpenTelemetry collector running as a Lambda extension layer: the
 * OpenTelemetry Lambda collector layer and the ADOT collector layer both receive OTLP/HTTP on
 * port 4318 of the execution environment. The relay appends `/v1/traces`.
 */
export const DEFAULT_OTEL_COLLECTOR_ENDPOINT = 'http://localhost:4318';
/** SQS's maximum visibility timeout, 12 hours. */
const SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;
/** The only actions a producer needs on the key of an SSE-KMS queue or topic. */
const TARGET_KEY_ACTIONS = ['kms:GenerateDataKey', 'kms:Decrypt'];

/**
 * The visibility timeout a source queue needs for a relay with this function timeout:
 * 6 x the timeout + the batching window ({@link SOURCE_BATCHING_WINDOW}), capped at SQS's 12 hours.
 *
 * AWS: "set the source queue's visibility timeout to at least six times the configuration timeout
 * on your function", which lets Lambda retry when the function is throttled while processing a
 * previous batch (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html). The
 * poller has already received a message while it fills a batch, so the batching window is added
 * on top. Same formula as template.yaml's SourceQueueVisibilityTimeout mapping.
 * `timeout` must be a concrete duration, not a token.
 */
export function sourceQueueVisibilityTimeout(timeout: Duration = DEFAULT_TIMEOUT): Duration {
  const seconds = 6 * timeout.toSeconds() + SOURCE_BATCHING_WINDOW.toSeconds();
  return Duration.seconds(Math.min(seconds, SQS_MAX_VISIBILITY_TIMEOUT_SECONDS));
}

export interface S3TraceRelayProps {
  /** The bucket whose notifications invoke the relay (S3 -> Lambda). */
  readonly bucket: s3.IBucket;
  /**
   * Where every relayed notification goes: SQS queues (standard or FIFO), SNS topics, EventBridge
   * event buses and Step Functions state machines. The relay gets exactly `sqs:SendMessage` on
   * each queue, `sns:Publish` on each topic, `events:PutEvents` and `events:DescribeEventBus` on
   * each bus (it asks once whether a bus exists, since `PutEvents` to a missing bus reports
   * success), and `states:StartExecution` on each state machine.
   */
  readonly targets: RelayTarget[];
  /**
   * The `source` of the events put on bus targets. Rules written for S3's own EventBridge events
   * need only their `source` changed to this. `aws.*` is reserved by AWS and throws.
   * @default DEFAULT_EVENT_SOURCE (`s3-trace-relay`)
   */
  readonly eventSource?: string;
  /** Key and event filters. @default - every object created / removed event */
  readonly filters?: RelayFilters;
  /**
   * Optional S3 -> SQS -> relay wiring: the relay consumes this queue with
   * `ReportBatchItemFailures` (give the queue a DLQ through its redrive policy).
   *
   * Its visibility timeout must be at least {@link sourceQueueVisibilityTimeout}(timeout)
   * (6 x the function timeout + the batching window): create it with
   * `visibilityTimeout: sourceQueueVisibilityTimeout(timeout)`. The construct throws when the
   * timeout is known and shorter: for a queue defined in this app (`new sqs.Queue`, whose
   * default is 30 s). It cannot check, and skips, a queue whose visibility timeout it cannot read:
   * an imported queue (`Queue.fromQueueArn` / `fromQueueAttributes`), a token value, or one
   * changed after this construct was created (escape hatches).
   * @default - none
   */
  readonly sourceQueue?: sqs.IQueue;
  /**
   * Queue receiving asynchronous invocations (S3, SNS, EventBridge) that still fail after
   * two retries.
   * @default - a new SQS queue with 14 days retention
   */
  readonly onFailureQueue?: sqs.IQueue;
  /**
   * Instruction-set architecture of the function (cargo lambda cross-compiles with zig).
   * @default lambda.Architecture.ARM_64
   */
  readonly architecture?: lambda.Architecture;
  /** Path to the relay's Cargo.toml. @default - the repository root, two levels above this file */
  readonly manifestPath?: string;
  /** RELAY_DEADLINE_MARGIN_MS. @default - the relay's default (500 ms) */
  readonly deadlineMargin?: Duration;
  /** Function timeout. @default DEFAULT_TIMEOUT (30 seconds) */
  readonly timeout?: Duration;
  /** Function memory in MiB. @default DEFAULT_MEMORY_SIZE_MB (256) */
  readonly memorySize?: number;
  /**
   * KMS keys of SSE-KMS targets that the construct cannot see. The relay gets exactly
   * `kms:GenerateDataKey` and `kms:Decrypt` (what a producer needs to send to an SSE-KMS queue or
   * publish to an SSE-KMS topic) on each key here and on each key it knows from the targets: the
   * `encryptionMasterKey` of a queue (`new sqs.Queue` with `encryption: KMS` /
   * `encryptionMasterKey`, or `Queue.fromQueueAttributes({ keyArn })`) and the `masterKey` of a
   * topic (`new sns.Topic({ masterKey })`, or `Topic.fromTopicAttributes({ keyArn })`).
   *
   * Pass the key here for an imported target whose key the import does not carry, e.g.
   * `Queue.fromQueueArn(...)` with `kms.Key.fromKeyArn(...)`: without it, sending fails with
   * KMS.AccessDeniedException. Pass keys, not imported aliases (IAM policies name key ARNs; an
   * imported customer alias throws). AWS managed keys (`alias/aws/sqs`, `alias/aws/sns`) need
   * nothing: their key policies already let the account's principals use them through the
   * service. The grant goes into the function's role only, so each key's own policy must allow
   * IAM policies of the function's account (a key's default policy does; a key in another account
   * must name this account).
   * @default - only the keys known from the targets; no KMS permission when there are none
   */
  readonly targetKeys?: kms.IKey[];
  /**
   * Reserved concurrency of the function (ReservedConcurrentExecutions): the most relays that run
   * at once, set aside from the account's pool. Use it to protect the targets (or their KMS keys'
   * request quotas) from bursts and to guarantee the relay that much concurrency so other functions
   * cannot throttle it. Invocations beyond it are throttled: Lambda retries S3/async events, SQS
   * messages return to the source queue. At least `maxConcurrency` when both are set. 0 stops
   * every invocation.
   * @default - none: the function scales in the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
  /**
   * Maximum concurrency of the `sourceQueue` event source (ScalingConfig.MaximumConcurrency,
   * 2-1000): how many concurrent invocations that queue alone can drive. It reserves nothing;
   * messages beyond it wait in the queue instead of being throttled. Needs `sourceQueue`; keep
   * `reservedConcurrency` (if set) at least as high, or Lambda throttles the mapping's invocations
   * and the throttled messages' receives count towards the DLQ's maxReceiveCount
   * (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
   * @default - no limit beyond the function's and the account's concurrency
   */
  readonly maxConcurrency?: number;
  /**
   * An OpenTelemetry collector Lambda extension layer to export the relay's spans through, e.g.
   * `lambda.LayerVersion.fromLayerVersionArn(this, 'Collector', arn)` with the OpenTelemetry
   * Lambda collector (`arn:aws:lambda:<region>:184161586896:layer:opentelemetry-collector-arm64-<version>:1`)
   * or the ADOT collector (`aws-otel-collector-arm64-ver-...`); same region and architecture as
   * the function. The function gets the layer and `OTEL_EXPORTER_OTLP_ENDPOINT` = `otelEndpoint`,
   * so the relay exports over OTLP/HTTP to the collector, which forwards as its configuration
   * says (`otelCollectorConfigUri`). No IAM permission is added: what the collector's exporters
   * need (an s3:// configuration, a backend's credentials) is the configuration's business.
   * @default - no layer; OpenTelemetry export only if `otelEndpoint` is given
   */
  readonly otelCollectorLayer?: lambda.ILayerVersion;
  /**
   * `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP base URL (http:// or https://) the relay exports
   * its spans to. With `otelCollectorLayer` it is where that collector listens; without a layer,
   * giving it turns export on towards an endpoint the function reaches by itself (a collector in
   * the VPC, a vendor's OTLP endpoint with `OTEL_EXPORTER_OTLP_HEADERS` set on the function).
   * Other OTEL_* variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, ...) can be added with
   * `relay.function.addEnvironment`.
   * @default - DEFAULT_OTEL_COLLECTOR_ENDPOINT (`http://localhost:4318`) with `otelCollectorLayer`;
   * otherwise no OTEL_* variable at all, and nothing of OpenTelemetry runs
   */
  readonly otelEndpoint?: string;
  /**
   * `OPENTELEMETRY_COLLECTOR_CONFIG_URI`: the configuration the collector layer loads, a path in
   * the function's package or layers, or a `file:`, `env:`, `yaml:`, `http(s)://` or `s3://` URI
   * (an s3:// object also needs `s3:GetObject` for the function's role, not granted here). Needs
   * `otelCollectorLayer`.
   * @default - the layer's own `/opt/collector-config/config.yaml` (OpenTelemetry layer: debug
   * exporter only; ADOT layer: AWS X-Ray)
   */
  readonly otelCollectorConfigUri?: string;
}

const DEFAULT_EVENTS = [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED];

function isQueue(target: RelayTarget): target is sqs.IQueue {
  return (target as sqs.IQueue).queueArn !== undefined && (target as sqs.IQueue).queueUrl !== undefined;
}

function isBus(target: RelayTarget): target is events.IEventBus {
  return (target as events.IEventBus).eventBusArn !== undefined;
}

function isStateMachine(target: RelayTarget): target is sfn.IStateMachine {
  return (target as sfn.IStateMachine).stateMachineArn !== undefined;
}

/** The target as RELAY_TARGETS names it: a queue by URL, everything else by ARN. */
function targetName(target: RelayTarget): string {
  if (isQueue(target)) return target.queueUrl;
  if (isBus(target)) return target.eventBusArn;
  if (isStateMachine(target)) return target.stateMachineArn;
  return target.topicArn;
}

/** The relay's grammar for `source=` (src/config/destination.rs): 1-256 characters, `aws.` reserved. */
function checkEventSource(scope: Construct, source: string | undefined): void {
  if (source === undefined || Token.isUnresolved(source)) return;
  if (source.length < 1 || source.length > 256 || /[&?,\s]/.test(source) || source.startsWith('aws.')) {
    throw new Error(
      `${scope.node.path}: eventSource ${JSON.stringify(source)} must be 1-256 characters without '&', '?', ',' ` +
        "or spaces, and not start with 'aws.' (AWS reserves those sources)",
    );
  }
}

/**
 * The relay's grammar for an `events=` pattern (src/route.rs `EventPattern::parse`): optional
 * `s3:`, names joined by `:`, optionally ending in `*` after a `:` or after part of a name.
 * `s3:*` alone is no event type (the regex would read it as the name `s3` and `:*`).
 */
const EVENT_PATTERN = /^(?:s3:)?[A-Za-z][A-Za-z0-9]*(?::[A-Za-z][A-Za-z0-9]*)*(?::?\*)?$/;

function checkEvent(scope: Construct, event: string): void {
  if (!Token.isUnresolved(event) && (event === 's3:*' || !EVENT_PATTERN.test(event))) {
    throw new Error(
      `${scope.node.path}: filters.events ${JSON.stringify(event)} is not an S3 event type ` +
        `(an optional s3: prefix, then names of letters and digits joined by ':', optionally ending in '*')`,
    );
  }
}

/**
 * The visibility timeout of a queue defined in this app, in seconds (SQS's default 30 when not
 * set); undefined when it cannot be known: an imported queue (no CfnQueue) or a token.
 */
function knownVisibilityTimeoutSeconds(queue: sqs.IQueue): number | undefined {
  const cfn = queue.node.defaultChild;
  if (!(cfn instanceof sqs.CfnQueue)) return undefined;
  const seconds = cfn.visibilityTimeout;
  if (seconds === undefined) return 30;
  return Token.isUnresolved(seconds) ? undefined : seconds;
}

/**
 * The key to grant on for a target's key or a `targetKeys` entry: the key itself, the target key of
 * an alias that knows it, or undefined for an AWS managed key's alias (`alias/aws/...`, whose key
 * policy already covers the account). An alias imported by name throws: IAM policies name key
 * ARNs, not alias ARNs.
 */
function keyToGrant(scope: Construct, key: kms.IKey): kms.IKey | undefined {
  const aliasName = (key as Partial<kms.IAlias>).aliasName;
  if (aliasName === undefined) return key;
  if (!Token.isUnresolved(aliasName) && aliasName.startsWith('alias/aws/')) return undefined;
  let target: kms.IKey | undefined;
  try {
    target = (key as kms.IAlias).aliasTargetKey; // new kms.Alias, Alias.fromAliasAttributes
  } catch {
    target = undefined; // Alias.fromAliasName: no target key to read
  }
  if (target) return target;
  throw new Error(
    `${scope.node.path}: KMS alias ${aliasName} of a target: pass its key instead (kms.Key.fromKeyArn in targetKeys); ` +
      'an IAM policy on an alias ARN does not allow using the key',
  );
}

function checkCount(scope: Construct, name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && !Token.isUnresolved(value) && !(Number.isInteger(value) && value >= min && value <= max)) {
    throw new Error(`${scope.node.path}: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

/** `otelEndpoint` must be an http(s) URL: the relay's OTLP exporter speaks OTLP/HTTP only. */
function checkOtelEndpoint(scope: Construct, endpoint: string | undefined): void {
  if (endpoint === undefined || Token.isUnresolved(endpoint)) return;
  let ok = false;
  try {
    const url = new URL(endpoint);
    ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && !/\s/.test(endpoint);
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new Error(
      `${scope.node.path}: otelEndpoint ${JSON.stringify(endpoint)} must be an http:// or https:// URL ` +
        `(the OTLP/HTTP base URL, e.g. ${DEFAULT_OTEL_COLLECTOR_ENDPOINT} for a collector extension layer)`,
    );
  }
}

function checkFilterValue(scope: Construct, name: string, value: string | undefined): void {
  if (value !== undefined && !Token.isUnresolved(value) && /[&?,]/.test(value)) {
    throw new Error(`${scope.node.path}: filters.${name} ${JSON.stringify(value)} must not contain '&', '?' or ','`);
  }
}

/**
 * The s3-trace-relay Lambda function (Rust, provided.al2023, X-Ray tracing active) wired to a
 * bucket's notifications, with least-privilege grants on its targets and an on-failure queue.
 */
export class S3TraceRelay extends Construct {
  public readonly function: lambda.Function;
  public readonly onFailureQueue: sqs.IQueue;
  /** The RELAY_TARGETS value (a token string). */
  public readonly relayTargets: string;

  constructor(scope: Construct, id: string, props: S3TraceRelayProps) {
    super(scope, id);
    if (props.targets.length === 0) {
      throw new Error(`${this.node.path}: at least one target is required`);
    }
    const filters = props.filters ?? {};
    checkFilterValue(this, 'prefix', filters.prefix);
    checkFilterValue(this, 'suffix', filters.suffix);
    const events = filters.events && filters.events.length > 0 ? filters.events : DEFAULT_EVENTS;
    for (const event of events) checkEvent(this, event);
    const timeout = props.timeout ?? DEFAULT_TIMEOUT;
    this.checkConcurrency(props);
    if (props.sourceQueue) this.checkSourceQueueVisibility(props.sourceQueue, timeout);

    // The relay's own filter syntax: ?prefix=…&suffix=…&events=ObjectCreated:*,…
    // Each event type goes in unchanged but for its `s3:` prefix, which the relay ignores anyway.
    const query: string[] = [];
    if (filters.prefix) query.push(`prefix=${filters.prefix}`);
    if (filters.suffix) query.push(`suffix=${filters.suffix}`);
    query.push(`events=${events.map((e) => e.replace(/^s3:/, '')).join(',')}`);
    const suffix = `?${query.join('&')}`;
    checkEventSource(this, props.eventSource);
    const busSuffix = props.eventSource ? `${suffix}&source=${props.eventSource}` : suffix;
    this.relayTargets = props.targets
      .map((t) => `${targetName(t)}${isBus(t) ? busSuffix : suffix}`)
      .join(',');

    this.onFailureQueue =
      props.onFailureQueue ??
      new sqs.Queue(this, 'OnFailureQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        retentionPeriod: Duration.days(14),
        enforceSSL: true,
      });

    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: logs.RetentionDays.TWO_WEEKS,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const environment: Record<string, string> = { RELAY_TARGETS: this.relayTargets };
    if (props.deadlineMargin) {
      environment.RELAY_DEADLINE_MARGIN_MS = String(props.deadlineMargin.toMilliseconds());
    }
    Object.assign(environment, this.otelEnvironment(props));

    this.function = new RustFunction(this, 'Function', {
      manifestPath: props.manifestPath ?? path.join(__dirname, '..', '..', 'Cargo.toml'),
      binaryName: 's3-trace-relay',
      runtime: 'provided.al2023',
      bundling: { architecture: props.architecture ?? lambda.Architecture.ARM_64 },
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      description: 'Relays S3 event notifications to SQS/SNS/EventBridge/Step Functions with X-Ray trace headers',
      memorySize: props.memorySize ?? DEFAULT_MEMORY_SIZE_MB,
      timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      layers: props.otelCollectorLayer ? [props.otelCollectorLayer] : undefined,
      tracing: lambda.Tracing.ACTIVE,
      loggingFormat: lambda.LoggingFormat.JSON,
      logGroup,
      environment,
      // Async invocations: the relay returns an error for anything not fully delivered;
      // Lambda retries twice, then sends the event to the on-failure queue.
      retryAttempts: 2,
      onFailure: new destinations.SqsDestination(this.onFailureQueue),
    });

    // Least privilege: sqs:SendMessage (+ GetQueueAttributes/GetQueueUrl) on each queue ARN,
    // sns:Publish on each topic ARN, events:PutEvents + events:DescribeEventBus on each bus ARN,
    // states:StartExecution on each state machine ARN. SendMessageBatch/PublishBatch need nothing more. Not
    // grantSendMessages/grantPublish: on an encrypted target they also grant kms:Encrypt,
    // kms:ReEncrypt* and kms:GenerateDataKey*; the keys get exactly TARGET_KEY_ACTIONS below.
    const keys = new Set<kms.IKey>(props.targetKeys ?? []);
    for (const target of props.targets) {
      if (isQueue(target)) {
        target.grant(this.function, 'sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl');
        if (target.encryptionMasterKey) keys.add(target.encryptionMasterKey);
      } else if (isBus(target)) {
        iam.Grant.addToPrincipal({
          grantee: this.function,
          actions: ['events:PutEvents', 'events:DescribeEventBus'],
          resourceArns: [target.eventBusArn],
        });
      } else if (isStateMachine(target)) {
        iam.Grant.addToPrincipal({
          grantee: this.function,
          actions: ['states:StartExecution'],
          resourceArns: [target.stateMachineArn],
        });
      } else {
        iam.Grant.addToPrincipalOrResource({
          grantee: this.function,
          actions: ['sns:Publish'],
          resourceArns: [target.topicArn],
          resource: target,
        });
        if (target.masterKey) keys.add(target.masterKey);
      }
    }
    // SSE-KMS targets: kms:GenerateDataKey and kms:Decrypt on the queue's or topic's key, what AWS
    // lists for a producer of an encrypted queue or a publisher to an encrypted topic
    // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html,
    // https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). Added to the function's
    // role only, not through key.grant: for a key in another account or region that would put
    // Resource "*" in the role's statement. The key's policy must allow this account's IAM policies.
    const keyArns = new Set<string>();
    for (const key of keys) {
      const grantOn = keyToGrant(this, key);
      if (grantOn) keyArns.add(grantOn.keyArn);
    }
    if (keyArns.size > 0) {
      iam.Grant.addToPrincipal({ grantee: this.function, actions: TARGET_KEY_ACTIONS, resourceArns: [...keyArns] });
    }

    // S3 -> Lambda: CDK adds the lambda:InvokeFunction permission (principal s3.amazonaws.com,
    // SourceArn the bucket, SourceAccount this account) and orders it before the notification.
    const keyFilters: s3.NotificationKeyFilter[] =
      filters.prefix || filters.suffix ? [{ prefix: filters.prefix || undefined, suffix: filters.suffix || undefined }] : [];
    const destination = new s3n.LambdaDestination(this.function);
    for (const event of events) {
      props.bucket.addEventNotification(event, destination, ...keyFilters);
    }

    if (props.sourceQueue) {
      this.function.addEventSource(
        new SqsEventSource(props.sourceQueue, {
          batchSize: 10,
          maxBatchingWindow: SOURCE_BATCHING_WINDOW,
          reportBatchItemFailures: true,
          maxConcurrency: props.maxConcurrency,
        }),
      );
    }
  }

  /**
   * The OpenTelemetry variables: the endpoint with a collector layer (its default port) or an
   * explicit endpoint, the collector's configuration URI with the layer; none otherwise, so the
   * relay starts nothing of OpenTelemetry.
   */
  private otelEnvironment(props: S3TraceRelayProps): Record<string, string> {
    checkOtelEndpoint(this, props.otelEndpoint);
    const env: Record<string, string> = {};
    if (props.otelCollectorConfigUri !== undefined) {
      if (!props.otelCollectorLayer) {
        throw new Error(
          `${this.node.path}: otelCollectorConfigUri configures the collector extension; it needs otelCollectorLayer`,
        );
      }
      if (!Token.isUnresolved(props.otelCollectorConfigUri) && !/^\S+$/.test(props.otelCollectorConfigUri)) {
        throw new Error(
          `${this.node.path}: otelCollectorConfigUri ${JSON.stringify(props.otelCollectorConfigUri)} must be a ` +
            'non-empty path or URI without spaces (e.g. /var/task/collector.yaml); leave it out for the layer default',
        );
      }
    }
    const endpoint = props.otelEndpoint ?? (props.otelCollectorLayer ? DEFAULT_OTEL_COLLECTOR_ENDPOINT : undefined);
    if (endpoint !== undefined) env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    if (props.otelCollectorConfigUri !== undefined) env.OPENTELEMETRY_COLLECTOR_CONFIG_URI = props.otelCollectorConfigUri;
    return env;
  }

  private checkConcurrency(props: S3TraceRelayProps): void {
    const { reservedConcurrency: reserved, maxConcurrency: max } = props;
    checkCount(this, 'reservedConcurrency', reserved, 0, Number.MAX_SAFE_INTEGER);
    // ScalingConfig.MaximumConcurrency: 2-1000 (https://docs.aws.amazon.com/lambda/latest/api/API_ScalingConfig.html).
    checkCount(this, 'maxConcurrency', max, 2, 1000);
    if (max !== undefined && !props.sourceQueue) {
      throw new Error(`${this.node.path}: maxConcurrency limits the SQS event source; it needs sourceQueue`);
    }
    if (reserved !== undefined && max !== undefined && !Token.isUnresolved(reserved) && !Token.isUnresolved(max) && reserved < max) {
      throw new Error(
        `${this.node.path}: reservedConcurrency (${reserved}) is below maxConcurrency (${max}): Lambda would throttle ` +
          'the SQS event source and return its messages to the queue; set reservedConcurrency >= maxConcurrency',
      );
    }
  }

  /** Throws when the source queue's visibility timeout is known and shorter than the relay needs. */
  private checkSourceQueueVisibility(queue: sqs.IQueue, timeout: Duration): void {
    const actual = knownVisibilityTimeoutSeconds(queue);
    if (actual === undefined || timeout.isUnresolved()) return;
    const needed = sourceQueueVisibilityTimeout(timeout).toSeconds();
    if (actual < needed) {
      throw new Error(
        `${this.node.path}: sourceQueue ${queue.node.path} has a visibility timeout of ${actual} s; the relay needs at ` +
          `least ${needed} s = 6 x the function timeout (${timeout.toSeconds()} s) + the batching window ` +
          `(${SOURCE_BATCHING_WINDOW.toSeconds()} s), as AWS recommends for SQS event sources. Create the queue with ` +
          'visibilityTimeout: sourceQueueVisibilityTimeout(timeout).',
      );
    }
  }
}
