import * as path from 'node:path';
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
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

/** A queue or topic the relay publishes to. */
export type RelayTarget = sqs.IQueue | sns.ITopic;

export interface S3TraceRelayProps {
  /** The bucket whose notifications invoke the relay (S3 -> Lambda). */
  readonly bucket: s3.IBucket;
  /** Where every relayed notification goes: SQS queues (standard or FIFO) and SNS topics. */
  readonly targets: RelayTarget[];
  /** Key and event filters. @default - every object created / removed event */
  readonly filters?: RelayFilters;
  /**
   * Optional S3 -> SQS -> relay wiring: the relay consumes this queue with
   * `ReportBatchItemFailures` (give the queue a DLQ through its redrive policy).
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
  /** Function timeout. @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** Function memory in MiB. @default 256 */
  readonly memorySize?: number;
}

const DEFAULT_EVENTS = [s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED];

function isQueue(target: RelayTarget): target is sqs.IQueue {
  return (target as sqs.IQueue).queueArn !== undefined && (target as sqs.IQueue).queueUrl !== undefined;
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

    // The relay's own filter syntax: ?prefix=…&suffix=…&events=ObjectCreated:*,…
    // Each event type goes in unchanged but for its `s3:` prefix, which the relay ignores anyway.
    const query: string[] = [];
    if (filters.prefix) query.push(`prefix=${filters.prefix}`);
    if (filters.suffix) query.push(`suffix=${filters.suffix}`);
    query.push(`events=${events.map((e) => e.replace(/^s3:/, '')).join(',')}`);
    const suffix = `?${query.join('&')}`;
    this.relayTargets = props.targets
      .map((t) => `${isQueue(t) ? t.queueUrl : t.topicArn}${suffix}`)
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

    this.function = new RustFunction(this, 'Function', {
      manifestPath: props.manifestPath ?? path.join(__dirname, '..', '..', 'Cargo.toml'),
      binaryName: 's3-trace-relay',
      runtime: 'provided.al2023',
      bundling: { architecture: props.architecture ?? lambda.Architecture.ARM_64 },
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      description: 'Relays S3 event notifications to SQS/SNS with X-Ray trace headers',
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
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
    // sns:Publish on each topic ARN. SendMessageBatch/PublishBatch need nothing more.
    for (const target of props.targets) {
      if (isQueue(target)) {
        target.grantSendMessages(this.function);
      } else {
        target.grantPublish(this.function);
      }
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
          maxBatchingWindow: Duration.seconds(1),
          reportBatchItemFailures: true,
        }),
      );
    }
  }
}
