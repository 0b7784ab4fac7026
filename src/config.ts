import { Type, type Static, type TObject } from 'typebox';
import { Value } from 'typebox/value';
import { isIP } from 'node:net';

// The only place that reads the environment. Every variable is declared here
// once, with its default; the type of `Config` is derived from the schema.
const Milliseconds = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 600_000, default: defaultValue, description });
const Seconds = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 31_536_000, default: defaultValue, description });
const Name = (defaultValue: string, description: string) =>
  Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9._:/-]+$', default: defaultValue, description });
const Url = (description: string) => Type.Optional(Type.String({ pattern: '^https?://', description }));

const REGION = '[a-z]{2}(-[a-z]+)+-[0-9]+';
const BUCKET = '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]';
const RegionUrls = (description: string) =>
  Type.String({ default: '', pattern: `^$|^${REGION}=https?://[^,=\\s]+(,${REGION}=https?://[^,=\\s]+)*$`, description });

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
    description: 'Informational; behaviour is set by the variables below, not by this',
  }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address the HTTP server binds' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port of the API' }),
  METRICS_PORT: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 9464,
    description: 'Port of /metrics and /health for the relay and the consumer (the API serves them on PORT)',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info', description: 'pino level; info logs one line per request' },
  ),

  AUTH_MODE: Type.Union([Type.Literal('none'), Type.Literal('api-key')], {
    default: 'none',
    description: 'none: everyone is the tenant public; api-key: Authorization: Bearer <key> required',
  }),
  API_KEYS: Type.String({
    default: '',
    pattern: '^$|^[a-z0-9][a-z0-9-]{0,62}:[0-9a-f]{64}(:legal-hold)?(,[a-z0-9][a-z0-9-]{0,62}:[0-9a-f]{64}(:legal-hold)?)*$',
    description: 'Comma-separated tenant:<sha256 hex of the key> entries; :legal-hold after one lets that key place and lift legal holds',
  }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 1,
    default: 60_000,
    description: 'Requests per tenant per minute, across all instances (AUTH_MODE=api-key only)',
  }),
  AUTH_FAILURES_PER_MINUTE: Type.Integer({
    minimum: 1,
    default: 100,
    description:
      'Failed authentications per client address per minute, across all instances; past it, the address gets 429 for the rest of the minute, even with a valid key (AUTH_MODE=api-key only)',
  }),
  TRUST_PROXY: Type.String({
    default: '',
    pattern: '^$|^[0-9A-Za-z.:/]+(,[0-9A-Za-z.:/]+)*$',
    description:
      'Proxies whose X-Forwarded-For names the client address: comma-separated addresses, CIDRs, loopback, linklocal or uniquelocal; empty: none, the TCP peer is the client',
  }),

  MAX_DOCUMENT_BYTES: Type.Integer({
    minimum: 1,
    maximum: 5 * 1024 ** 4,
    default: 5 * 1024 ** 3,
    description: 'Largest document, in bytes (default 5 GiB); a larger Content-Length is 413 before any byte is read',
  }),
  INLINE_CONTENT_MAX_BYTES: Type.Integer({
    minimum: 0,
    maximum: 300_000,
    default: 16_384,
    description: 'Content up to this size sits in the DynamoDB item instead of S3',
  }),
  DOCUMENT_CACHE_MAX_BYTES: Type.Integer({
    minimum: 0,
    maximum: 64 * 1024 * 1024,
    default: 1024 * 1024,
    description: 'Documents up to this size are read whole and cached (memory, Redis); larger ones always stream from S3',
  }),
  MAX_CONCURRENT_UPLOADS: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 16,
    description:
      'Uploads above INLINE_CONTENT_MAX_BYTES in progress at once per process; past this, 503 with Retry-After. Each holds one part buffer of S3_PART_SIZE_BYTES, and shares S3_SPARE_PART_BUFFERS more with the others',
  }),
  MAX_CONCURRENT_UPLOADS_PER_TENANT: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 8,
    description:
      'Of MAX_CONCURRENT_UPLOADS, how many one tenant may hold at once in a process (one-request uploads and resumable appends alike); past this, 503 with Retry-After for that tenant while the others still upload',
  }),
  UPLOAD_EXPIRY_SECONDS: Type.Integer({
    minimum: 60,
    maximum: 172_799,
    default: 24 * 3600,
    description:
      'A resumable upload not completed within this of its creation expires (Upload-Expires): the lifecycle worker aborts it and removes its parts. Under the 2-day AbortIncompleteMultipartUpload rule of the bucket',
  }),
  UPLOAD_CREATIONS_PER_MINUTE: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 600,
    description: 'Resumable uploads one tenant may create per minute, across all instances (counted in Redis; not enforced while Redis is down); past it, 429',
  }),
  S3_PART_SIZE_BYTES: Type.Integer({
    minimum: 5 * 1024 * 1024,
    maximum: 5 * 1024 ** 3,
    default: 5 * 1024 * 1024,
    description: 'Part size of multipart uploads (S3 minimum 5 MiB; 10 000 parts at most, so raise it for documents over 50 GiB)',
  }),
  S3_PARTS_IN_FLIGHT: Type.Integer({
    minimum: 1,
    maximum: 16,
    default: 1,
    description: 'Parts of one upload sent to S3 at once while the next one fills, each in a spare part buffer (more: faster uploads, more memory)',
  }),
  S3_SPARE_PART_BUFFERS: Type.Integer({
    minimum: 0,
    maximum: 1024,
    default: 2,
    description:
      'Part buffers the uploads of a process share, beyond the one each fills: what lets an upload send a part while it fills the next. Uploads hold S3_PART_SIZE_BYTES × (MAX_CONCURRENT_UPLOADS + this) at most',
  }),
  S3_TRANSFER_TIMEOUT_MS: Milliseconds(
    15_000,
    'Deadline of one part upload, and longest pause of a streamed download, before the transfer fails',
  ),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description:
      'A request must arrive whole (head within a third of this, body within the rest) or get 408 and a closed connection; document uploads get more, see DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND',
  }),
  DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND: Type.Integer({
    minimum: 1024,
    maximum: 1024 ** 3,
    default: 256 * 1024,
    description: 'A document body gets one more second of REQUEST_TIMEOUT_MS for every this many bytes received (the slowest upload served)',
  }),
  DOCUMENT_CACHE_TTL_SECONDS: Seconds(3600, 'Lifetime of a document in Redis'),
  DOCUMENT_TOMBSTONE_SECONDS: Seconds(30 * 24 * 3600, 'How long a deleted document is remembered'),
  DOCUMENT_LINK_TTL_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 3600,
    default: 300,
    description:
      'Lifetime of a direct link (GET /documents/{id}/link, and the redirect): a deleted document\'s link works at most this long after the delete',
  }),
  DOCUMENT_REDIRECT_MIN_BYTES: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 5 * 1024 ** 4,
      description: 'A plain GET of a document of at least this many bytes in S3 answers 307 to a direct link (no Range, no conditions; HEAD is served); unset: never',
    }),
  ),
  DOCUMENT_CDN_DOMAIN: Type.Optional(
    Type.String({
      maxLength: 253,
      pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$',
      description:
        'Host of the CloudFront distribution in front of DOCUMENTS_BUCKET (d111111abcdef8.cloudfront.net, or its alias): links are CloudFront signed URLs on it; unset: S3 presigned URLs. With DOCUMENT_CDN_KEY_PAIR_ID and DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID',
    }),
  ),
  DOCUMENT_CDN_KEY_PAIR_ID: Type.Optional(
    Type.String({
      pattern: '^K[A-Z0-9]{6,40}$',
      description: "Id of the CloudFront public key in the distribution's trusted key group whose private key signs the links",
    }),
  ),
  DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2048,
      pattern: '^[A-Za-z0-9/_+=.@:-]+$',
      description: 'Secrets Manager secret (ARN or name) whose value is the PEM RSA 2048 private key of DOCUMENT_CDN_KEY_PAIR_ID, read once at start',
    }),
  ),
  RETENTION_DEFAULTS: Type.String({
    default: '',
    pattern: '^$|^([a-z0-9][a-z0-9-]{0,62}|\\*)=[0-9]{1,5}(,([a-z0-9][a-z0-9-]{0,62}|\\*)=[0-9]{1,5})*$',
    description:
      'Days a tenant\'s documents are retained at least (DELETE refused before), as tenant=days pairs; * is every other tenant. A Retain-Until on a create can only lengthen it',
  }),
  S3_OBJECT_LOCK_MODE: Type.Union([Type.Literal('off'), Type.Literal('GOVERNANCE'), Type.Literal('COMPLIANCE')], {
    default: 'off',
    description:
      'With the bucket made with Object Lock (terraform object_lock): each document\'s retention and legal hold are set on its object too, in this mode; off: in the metadata only',
  }),
  DOCUMENTS_KMS_KEY_ID: Type.Optional(
    Type.String({ minLength: 1, maxLength: 2048, pattern: '^[A-Za-z0-9/_:+=.@-]+$', description: 'KMS key every document object is encrypted with (SSE-KMS, with an S3 Bucket Key); unset: the bucket\'s default encryption' }),
  ),
  TENANT_KMS_KEYS: Type.String({
    default: '',
    pattern: '^$|^[a-z0-9][a-z0-9-]{0,62}=[A-Za-z0-9/_:+=.@-]+(,[a-z0-9][a-z0-9-]{0,62}=[A-Za-z0-9/_:+=.@-]+)*$',
    description:
      'tenant=KMS key pairs: that tenant\'s objects are encrypted with its own key (crypto-shredding: disabling the key makes them unreadable), and none of its content sits inline in DynamoDB',
  }),
  MEMORY_CACHE_MAX_BYTES: Type.Integer({
    minimum: 0,
    default: 64 * 1024 * 1024,
    description: 'In-process cache of hot documents, in bytes (0 turns it off)',
  }),
  MEMORY_CACHE_LEASE_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 1000,
    description:
      'Process memory answers only within this of a heartbeat of its own heard back through Redis pub/sub; also the longest a DELETE waits for an instance that does not acknowledge it',
  }),
  IDEMPOTENCY_TTL_SECONDS: Seconds(24 * 3600, 'How long an Idempotency-Key is remembered'),
  IDEMPOTENCY_LOCK_SECONDS: Seconds(30, 'After this, an in-progress request is presumed dead'),
  ORDER_DEDUP_WINDOW_SECONDS: Seconds(15, 'Identical order payloads within this window are one order'),

  REDIS_URL: Type.String({
    pattern: '^rediss?://',
    default: 'redis://127.0.0.1:6379',
    description: 'Redis for the cache, invalidations and rate limits (rediss:// on ElastiCache; its password comes from REDIS_AUTH_SECRET_ID)',
  }),
  REDIS_AUTH_SECRET_ID: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2048,
      pattern: '^[A-Za-z0-9/_+=.@:-]+$',
      description: 'Secrets Manager secret (ARN or name) whose value is the Redis password, read once at start; unset: none, or the one in REDIS_URL',
    }),
  ),
  REDIS_COMMAND_TIMEOUT_MS: Milliseconds(200, 'A Redis command slower than this counts as a failure'),
  REDIS_CONNECT_TIMEOUT_MS: Milliseconds(1000, 'Redis connection timeout'),
  REDIS_HEARTBEAT_MS: Milliseconds(
    500,
    'Every Redis connection pings this often; two missed pings in a row (a hung connection) drop and reconnect it',
  ),

  AWS_REGION: Type.String({ pattern: `^${REGION}$`, default: 'us-east-1', description: 'AWS region of every resource' }),
  AWS_ENDPOINT_URL: Url('Endpoint for every AWS service (emulators)'),
  AWS_ENDPOINT_URL_DYNAMODB: Url('Endpoint for DynamoDB only'),
  AWS_ENDPOINT_URL_S3: Url('Endpoint for S3 only'),
  AWS_ENDPOINT_URL_SNS: Url('Endpoint for SNS only'),
  AWS_ENDPOINT_URL_SQS: Url('Endpoint for SQS only'),
  AWS_ENDPOINT_URL_SECRETS_MANAGER: Url('Endpoint for Secrets Manager only'),
  AWS_CONNECT_TIMEOUT_MS: Milliseconds(1000, 'TCP/TLS connect timeout of AWS calls'),
  AWS_REQUEST_TIMEOUT_MS: Milliseconds(
    1000,
    'Deadline of one AWS call attempt (and idle timeout of an S3 body); a call makes at most AWS_MAX_ATTEMPTS',
  ),
  AWS_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Attempts per AWS call (retries with jittered back-off)' }),
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false, description: 'Path-style S3 URLs (emulators)' }),

  DOCUMENTS_TABLE: Name('documents', 'DynamoDB table of document metadata'),
  IDEMPOTENCY_TABLE: Name('idempotency-keys', 'DynamoDB table of Idempotency-Key records'),
  ORDERS_TABLE: Name('orders', 'DynamoDB table of orders and their outbox state'),
  CONSUMER_TABLE: Name('order-consumer', 'DynamoDB table of the downstream consumer'),
  DOCUMENTS_BUCKET: Name('documents', 'S3 bucket of document content'),
  ORDER_EVENTS_TOPIC_ARN: Name('arn:aws:sns:us-east-1:000000000000:order-events', 'SNS topic of order events'),
  DOCUMENT_EVENTS: Type.Union([Type.Literal('on'), Type.Literal('off')], {
    default: 'on',
    description:
      'on: document.created and document.deleted are published (outbox, then DOCUMENT_CHANGES_TOPIC_ARN); off: none, and creates and deletes cost no event writes',
  }),
  DOCUMENT_CHANGES_TOPIC_ARN: Name(
    'arn:aws:sns:us-east-1:000000000000:document-changes',
    'SNS topic of document.created and document.deleted events, for other systems (message attributes type and tenant)',
  ),
  ORDER_EVENTS_QUEUE: Name('order-events-consumer', 'SQS queue the consumer reads'),
  ORDER_EVENTS_DLQ: Name('order-events-consumer-dlq', 'Dead-letter queue of the consumer queue'),
  CONSUMER_MAX_RECEIVES: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 5,
    description: 'Receives of a message before the queue moves it to the dead-letter queue (set by the bootstrap)',
  }),

  CONSUMER_WAIT_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 20,
    default: 20,
    description: 'SQS long-poll wait of the consumer (20 is the SQS maximum)',
  }),
  CONSUMER_VISIBILITY_TIMEOUT_SECONDS: Seconds(30, 'A received event is hidden from other consumers this long; a failed one comes back after it'),
  CONSUMER_DEDUP_SECONDS: Seconds(7 * 24 * 3600, 'How long the consumer remembers an applied event id'),

  ORDER_PUBLISH_TIMEOUT_MS: Milliseconds(1000, 'Deadline of the publish attempt a write makes (an order, a document created or deleted); the relay publishes what it leaves pending'),
  RELAY_INTERVAL_MS: Milliseconds(1000, 'Pause between relay sweeps when nothing is pending'),
  RELAY_LEASE_SECONDS: Seconds(30, 'How long a relay replica owns the events it claimed'),
  RELAY_BATCH_SIZE: Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'Events one relay sweep claims at most' }),
  RELAY_GRACE_MS: Type.Integer({
    minimum: 0,
    maximum: 600_000,
    default: 5000,
    description: "The relay leaves events younger than this to the API's own publish attempt",
  }),
  DOCUMENT_REGIONS: Type.String({
    default: '',
    pattern: `^$|^${REGION}=${BUCKET}(,${REGION}=${BUCKET})*$`,
    description:
      'Regions that serve documents, as region=bucket pairs, the primary (orders) first; empty: AWS_REGION alone (see Multi-region documents)',
  }),
  REGION_ENDPOINT_URLS: RegionUrls('Endpoint of every AWS service of another region, as region=url pairs (emulators)'),
  REGION_ENDPOINT_URLS_DYNAMODB: RegionUrls('Endpoint of DynamoDB of another region, as region=url pairs (emulators)'),
  REGION_ENDPOINT_URLS_S3: RegionUrls('Endpoint of S3 of another region, as region=url pairs (emulators)'),
  DOCUMENT_EVENTS_TOPIC_ARN: Name(
    'arn:aws:sns:us-east-1:000000000000:document-events',
    "SNS topic this region announces its deletes on, for the other regions' caches (multi-region only)",
  ),
  DOCUMENT_INVALIDATIONS_QUEUE: Name(
    'document-invalidations',
    "SQS queue of this region, subscribed to the other regions' document-events topics (multi-region only)",
  ),
  DOCUMENT_INVALIDATIONS_DLQ: Name('document-invalidations-dlq', 'Dead-letter queue of the invalidations queue (multi-region only)'),
  LIFECYCLE_INTERVAL_SECONDS: Seconds(300, 'Pause between two sweeps of the lifecycle worker'),
  LIFECYCLE_ORPHAN_GRACE_SECONDS: Seconds(
    24 * 3600,
    'An S3 object no document points to is removed once older than this; must exceed the longest possible upload',
  ),
  LIFECYCLE_LEASE_SECONDS: Seconds(60, 'How long a lifecycle worker replica owns the sweep (one sweeps at a time)'),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: Type.Integer({
    minimum: 0,
    maximum: 600_000,
    default: 200,
    description: 'Shed load (503), and answer /health/ready 503 (event loop stalled), while the event loop lags more than this, or could not be sampled at all (0 turns the check off)',
  }),
  LISTEN_BACKLOG: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 4096,
    description: "Connections the kernel queues for the API before accepting them (capped by net.core.somaxconn; Node's default is 511)",
  }),
  MAX_IN_FLIGHT_REQUESTS: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 512,
    description: 'Requests in progress at once; past this, new ones get a fast 503 (health and metrics excepted)',
  }),
  LOAD_SHED_EVENT_LOOP_UTILIZATION: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0,
    description: 'Shed load above this event-loop utilisation (0 turns the check off)',
  }),
  SHUTDOWN_TIMEOUT_MS: Milliseconds(10_000, 'Hard limit of a graceful shutdown'),

  // Tracing: the standard OpenTelemetry variables, read here like every other
  // one and handed to the SDK explicitly (src/telemetry/tracing.ts). Without
  // an endpoint no SDK starts.
  OTEL_EXPORTER_OTLP_ENDPOINT: Url('OTLP/HTTP receiver (protobuf); traces go to <url>/v1/traces. Unset: tracing off'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Url('Full OTLP/HTTP URL for traces; wins over OTEL_EXPORTER_OTLP_ENDPOINT'),
  OTEL_EXPORTER_OTLP_HEADERS: Type.Optional(
    Type.String({ pattern: '^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$', description: 'Comma-separated key=value headers sent with every export (e.g. an API key)' }),
  ),
  OTEL_EXPORTER_OTLP_PROTOCOL: Type.Union([Type.Literal('http/protobuf')], {
    default: 'http/protobuf',
    description: 'OTLP transport; only http/protobuf is built in',
  }),
  OTEL_EXPORTER_OTLP_TIMEOUT: Milliseconds(10_000, 'Deadline of one export of spans'),
  OTEL_SERVICE_NAME: Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: 'service.name of the spans (default docsvc-api, docsvc-relay or docsvc-consumer)' }),
  ),
  OTEL_RESOURCE_ATTRIBUTES: Type.Optional(
    Type.String({ pattern: '^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$', description: 'Comma-separated key=value resource attributes (deployment.environment.name=prod, ...)' }),
  ),
  OTEL_TRACES_SAMPLER: Type.Union(
    ['parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio', 'always_on', 'always_off', 'traceidratio'].map(
      (sampler) => Type.Literal(sampler),
    ),
    { default: 'parentbased_always_on', description: 'Which traces are recorded; the parentbased ones follow the caller\'s decision' },
  ),
  OTEL_TRACES_SAMPLER_ARG: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Ratio of the traceidratio samplers' }),
  OTEL_BSP_SCHEDULE_DELAY: Milliseconds(5000, 'Spans are exported in batches at least this often'),
  OTEL_SDK_DISABLED: Type.Boolean({ default: false, description: 'true: no tracing even with an endpoint set' }),
});

export type Config = Static<typeof ConfigSchema>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Validates the environment once; a bad value throws naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const config = parseEnvironment(ConfigSchema, env);
  const problems = relationProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

const S3_MAX_PARTS = 10_000;

/** The longest a document upload may take before its deadline ends it, in seconds. */
export function longestUploadSeconds(config: Config): number {
  return (config.REQUEST_TIMEOUT_MS / 1000) + config.MAX_DOCUMENT_BYTES / config.DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND;
}

/** What no single variable's schema can say: limits that must agree with each other, addresses that must parse. */
function relationProblems(config: Config): string[] {
  const problems: string[] = [];
  const longest = Math.ceil(longestUploadSeconds(config));
  // The worker would otherwise remove the object of an upload that is still committing.
  if (config.MAX_DOCUMENT_BYTES > config.S3_PART_SIZE_BYTES * S3_MAX_PARTS) {
    problems.push(`MAX_DOCUMENT_BYTES: at most S3_PART_SIZE_BYTES × ${S3_MAX_PARTS} (an S3 multipart upload has ${S3_MAX_PARTS} parts at most)`);
  }
  const regions = [...regionPairs(config.DOCUMENT_REGIONS)];
  if (regions.length > 0) {
    if (regions.length < config.DOCUMENT_REGIONS.split(',').length) problems.push('DOCUMENT_REGIONS: a region is listed twice');
    const own = regions.find(([region]) => region === config.AWS_REGION);
    if (!own) problems.push(`DOCUMENT_REGIONS: must list AWS_REGION (${config.AWS_REGION})`);
    else if (own[1] !== config.DOCUMENTS_BUCKET) problems.push(`DOCUMENT_REGIONS: the bucket of ${own[0]} must be DOCUMENTS_BUCKET (${config.DOCUMENTS_BUCKET})`);
  }
  if (config.LIFECYCLE_ORPHAN_GRACE_SECONDS <= longest) {
    problems.push(
      `LIFECYCLE_ORPHAN_GRACE_SECONDS: must exceed the longest upload, ${longest} s (REQUEST_TIMEOUT_MS + MAX_DOCUMENT_BYTES / DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND)`,
    );
  }
  const tenantKeys = config.TENANT_KMS_KEYS === '' ? [] : config.TENANT_KMS_KEYS.split(',');
  if (regionPairs(config.TENANT_KMS_KEYS).size < tenantKeys.length) problems.push('TENANT_KMS_KEYS: a tenant is listed twice');
  // Of several regions, an instance writes into other regions' buckets too (a resumable upload homed there), and S3
  // takes only a key of the bucket's region: a name that resolves in every region, not an ARN or a one-region key id.
  if (regions.length > 1) {
    const keys = [['DOCUMENTS_KMS_KEY_ID', config.DOCUMENTS_KMS_KEY_ID], ...[...regionPairs(config.TENANT_KMS_KEYS).values()].map((key) => ['TENANT_KMS_KEYS', key])];
    for (const [name, key] of keys) {
      if (key !== undefined && !/^(alias\/|mrk-)/.test(key)) {
        problems.push(`${name}: with several DOCUMENT_REGIONS, an alias name (alias/...) or a multi-Region key id (mrk-...), which name a key in every region (got "${key}")`);
      }
    }
  }
  // All three or none: a domain without its key would sign nothing, a key without a domain would sign for nowhere.
  const cdn = ['DOCUMENT_CDN_DOMAIN', 'DOCUMENT_CDN_KEY_PAIR_ID', 'DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID'] as const;
  const cdnSet = cdn.filter((key) => config[key] !== undefined);
  if (cdnSet.length > 0 && cdnSet.length < cdn.length) {
    problems.push(`${cdn.filter((key) => config[key] === undefined).join(', ')}: set with ${cdnSet.join(', ')} (CloudFront links need all three), or none of them`);
  }
  if (config.MAX_CONCURRENT_UPLOADS_PER_TENANT > config.MAX_CONCURRENT_UPLOADS) {
    problems.push('MAX_CONCURRENT_UPLOADS_PER_TENANT: at most MAX_CONCURRENT_UPLOADS');
  }
  const untrustable = config.TRUST_PROXY.split(',').find((entry) => entry !== '' && !isTrustable(entry));
  if (untrustable !== undefined) {
    problems.push(`TRUST_PROXY: "${untrustable}" is not an address, a CIDR, loopback, linklocal or uniquelocal`);
  }
  return problems;
}

/** What proxy-addr (Fastify's trustProxy) accepts in a list; anything else would throw at start without naming the variable. */
function isTrustable(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', bits, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  return bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128));
}

/** Fastify's trustProxy from TRUST_PROXY: nobody, or a list. */
export function trustProxyOf(value: string): false | string {
  return value === '' ? false : value;
}

/** `a=x,b=y` (DOCUMENT_REGIONS, REGION_ENDPOINT_URLS*) as a map, in the order given. */
export function regionPairs(text: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) pairs.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
  }
  return pairs;
}

/** Reads the variables a schema declares from an environment, with defaults and conversion. */
export function parseEnvironment<T extends TObject>(schema: T, env: Record<string, string | undefined>): Static<T> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key]?.trim();
    if (value !== undefined && (value !== '' || key === 'API_KEYS')) input[key] = value;
  }
  const candidate = Value.Convert(schema, Value.Default(schema, input));
  if (Value.Check(schema, candidate)) return candidate as Static<T>;
  const problems = new Map<string, string>();
  for (const error of Value.Errors(schema, candidate)) {
    const name = error.instancePath.replace(/^\//, '') || 'config';
    if (problems.has(name)) continue;
    const received = name in input ? ` (got "${input[name]}")` : '';
    problems.set(name, `${name}: ${describe(schema, name, error.message)}${received}`);
  }
  throw new ConfigError([...problems.values()]);
}

function describe(schema: TObject, name: string, fallback: string): string {
  const property = (schema.properties as Record<string, { anyOf?: { const?: unknown }[] }>)[name];
  const choices = property?.anyOf?.map((option) => option.const).filter((value) => value !== undefined);
  return choices?.length ? `must be one of ${choices.join(', ')}` : fallback;
}
