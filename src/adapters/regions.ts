import { createHash } from 'node:crypto';
import { createAwsClients, type AwsClients } from './aws.ts';
import { regionPairs, type Config } from '../config.ts';

/**
 * The regions of the document path (DOCUMENT_REGIONS), which one this
 * process runs in, and the home region of every key.
 *
 * Every region reads its own replica of the global tables. Writes whose
 * outcome depends on what is already there (the conditional create of a
 * document, its delete, an Idempotency-Key claim) all go to one replica
 * per key, its home, so that DynamoDB's condition decides them once: with
 * writes to the local replicas, two regions could both find an id free
 * before replication told either of the other's write, and last-writer-wins
 * would then keep one and drop the other after both answered 201.
 *
 * The home is the region of highest rendezvous score for the key: stable,
 * spread evenly, and adding or removing a region moves only the keys that
 * region wins or held (docs/design.md, "Multi-region documents").
 */
export class Regions {
  /** Region → documents bucket, the primary first. */
  private readonly buckets: Map<string, string>;
  private readonly config: Config;
  readonly local: string;
  /** Where orders, their topic and queues live: the first region listed. */
  readonly primary: string;

  constructor(config: Config) {
    this.config = config;
    const listed = regionPairs(config.DOCUMENT_REGIONS);
    this.buckets = listed.size > 0 ? listed : new Map([[config.AWS_REGION, config.DOCUMENTS_BUCKET]]);
    this.local = config.AWS_REGION;
    this.primary = this.buckets.keys().next().value ?? config.AWS_REGION;
  }

  get names(): string[] {
    return [...this.buckets.keys()];
  }

  /** More than one region: homes, remote stores and cross-region invalidations are on. */
  get multi(): boolean {
    return this.buckets.size > 1;
  }

  homeOf(key: string): string {
    if (!this.multi) return this.local;
    let best = this.local;
    let bestScore = -1;
    for (const region of this.buckets.keys()) {
      const score = createHash('sha256').update(region).update('\0').update(key).digest().readUIntBE(0, 6);
      if (score > bestScore || (score === bestScore && region < best)) [best, bestScore] = [region, score];
    }
    return best;
  }

  /** The configuration clients of `region` are made from: its region, endpoints and bucket. */
  configOf(region: string): Config {
    if (region === this.local) return this.config;
    const bucket = this.buckets.get(region);
    if (bucket === undefined) throw new Error(`${region} is not one of DOCUMENT_REGIONS`);
    const endpoint = (pairs: string) => regionPairs(pairs).get(region);
    return {
      ...this.config,
      AWS_REGION: region,
      AWS_ENDPOINT_URL: endpoint(this.config.REGION_ENDPOINT_URLS),
      AWS_ENDPOINT_URL_DYNAMODB: endpoint(this.config.REGION_ENDPOINT_URLS_DYNAMODB),
      AWS_ENDPOINT_URL_S3: endpoint(this.config.REGION_ENDPOINT_URLS_S3),
      AWS_ENDPOINT_URL_SNS: undefined,
      AWS_ENDPOINT_URL_SQS: undefined,
      DOCUMENTS_BUCKET: bucket,
    };
  }

  /** AWS clients for every region: `local` for this one, new ones for the others (closed by `destroy`). */
  connect(local: AwsClients): RegionalClients {
    const clients = new Map(this.names.map((region) => [region, region === this.local ? local : createAwsClients(this.configOf(region))]));
    return {
      of: (region) => clients.get(region) ?? local,
      destroy: () => {
        for (const [region, aws] of clients) if (region !== this.local) aws.destroy();
      },
    };
  }
}

export type RegionalClients = { of(region: string): AwsClients; destroy(): void };

/** The ARN of a resource named alike in another region (each region's topic of one name). */
export function arnInRegion(arn: string, region: string): string {
  const parts = arn.split(':');
  parts[3] = region;
  return parts.join(':');
}

/** The configuration of the orders path: the primary region's, wherever this process runs. */
export function ordersConfig(config: Config): Config {
  const regions = new Regions(config);
  return regions.configOf(regions.primary);
}
