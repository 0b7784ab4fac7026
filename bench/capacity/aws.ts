// AWS list prices and limits the capacity model uses, each with its source.
// Prices: us-east-1, on-demand, USD, as listed on the AWS pricing pages named
// below; read on PRICES_AS_OF from stored copies of those pages and of public
// price tables that transcribe them. They change: check the AWS Pricing
// Calculator before a budget depends on them. Other regions cost more (the
// terraform default, eu-west-1, by roughly 5-15%).

export const PRICES_AS_OF = '2026-12-01';
export const PRICE_REGION = 'us-east-1';
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

export type NodeType = { name: string; vcpu: number; memoryGiB: number; baselineGbps: number; usdPerHour: number };
/** An EC2 node type for the pods: its CPU, since the per-request figures were measured on another (x86_64) machine. */
export type Ec2NodeType = NodeType & { arch: 'arm64' | 'x86_64'; processor: string; vcpuIsCore: boolean };

/**
 * EC2 (https://aws.amazon.com/ec2/pricing/on-demand/), compute-optimised;
 * baseline network from the EC2 network performance tables. Graviton (c7g,
 * arm64) is what the node autoscaler prefers; c7i (x86_64) is there to price
 * the other architecture: its vCPU is a hyperthread, a Graviton vCPU a core.
 */
export const EC2: Record<string, Ec2NodeType> = {
  'c7g.xlarge': { name: 'c7g.xlarge', vcpu: 4, memoryGiB: 8, baselineGbps: 1.876, usdPerHour: 0.1445, arch: 'arm64', processor: 'Graviton3', vcpuIsCore: true },
  'c7g.2xlarge': { name: 'c7g.2xlarge', vcpu: 8, memoryGiB: 16, baselineGbps: 3.75, usdPerHour: 0.289, arch: 'arm64', processor: 'Graviton3', vcpuIsCore: true },
  'c7g.4xlarge': { name: 'c7g.4xlarge', vcpu: 16, memoryGiB: 32, baselineGbps: 7.5, usdPerHour: 0.578, arch: 'arm64', processor: 'Graviton3', vcpuIsCore: true },
  'c7i.2xlarge': { name: 'c7i.2xlarge', vcpu: 8, memoryGiB: 16, baselineGbps: 3.125, usdPerHour: 0.357, arch: 'x86_64', processor: 'Intel Xeon (Sapphire Rapids)', vcpuIsCore: false },
};

export type CacheNodeType = NodeType & {
  /** Commands per second one node takes, for planning (see REDIS_OPS_NOTE). */
  opsPerSecond: number;
};

/**
 * ElastiCache (https://aws.amazon.com/elasticache/pricing/), Redis OSS /
 * Valkey 7.1+, memory-optimised Graviton3. Memory as ElastiCache lists it;
 * baseline network as EC2 lists it for the same size (the "up to" figures are
 * bursts, not sustained).
 */
export const ELASTICACHE: Record<string, CacheNodeType> = {
  'cache.r7g.xlarge': { name: 'cache.r7g.xlarge', vcpu: 4, memoryGiB: 26.32, baselineGbps: 1.876, usdPerHour: 0.437, opsPerSecond: 250_000 },
  'cache.r7g.2xlarge': { name: 'cache.r7g.2xlarge', vcpu: 8, memoryGiB: 52.82, baselineGbps: 3.75, usdPerHour: 0.873, opsPerSecond: 500_000 },
  'cache.r7g.4xlarge': { name: 'cache.r7g.4xlarge', vcpu: 16, memoryGiB: 105.81, baselineGbps: 7.5, usdPerHour: 1.745, opsPerSecond: 1_000_000 },
  'cache.r7g.8xlarge': { name: 'cache.r7g.8xlarge', vcpu: 32, memoryGiB: 209.55, baselineGbps: 15, usdPerHour: 3.491, opsPerSecond: 1_000_000 },
  'cache.r7g.16xlarge': { name: 'cache.r7g.16xlarge', vcpu: 64, memoryGiB: 419.09, baselineGbps: 30, usdPerHour: 6.981, opsPerSecond: 1_000_000 },
};

export const REDIS_OPS_NOTE =
  'AWS measured over 1 M requests/s per r7g.4xlarge node with ElastiCache 7.1 (AWS Database Blog, "Achieve over 500 million requests per second per cluster with Amazon ElastiCache for Redis 7.1"); ' +
  'the smaller sizes are an assumption scaled by cores, and the engine thread does not scale past 4xlarge';

/** ElastiCache reserves 25% of a node's memory by default (reserved-memory-percent): maxmemory is the rest. */
export const REDIS_USABLE_MEMORY_SHARE = 0.75;
/** Nodes per cluster (cluster mode): 90 by default, up to 500 on request (ElastiCache quotas). */
export const REDIS_MAX_NODES_PER_CLUSTER = 500;

/** DynamoDB (https://aws.amazon.com/dynamodb/pricing/; on-demand prices since the November 2024 reduction). */
export const DYNAMODB = {
  onDemandUsdPerMillionReads: 0.125,
  onDemandUsdPerMillionWrites: 0.625,
  provisionedUsdPerRcuHour: 0.00013,
  provisionedUsdPerWcuHour: 0.00065,
  storageUsdPerGbMonth: 0.25,
  /** Per partition (developer guide, "Partitions" and "warm throughput"). */
  partitionRcu: 3000,
  partitionWcu: 1000,
  partitionGb: 10,
  /** Table-level on-demand throughput quota, per table, adjustable (developer guide, "on-demand maximum throughput"). */
  onDemandTableQuota: 40_000,
  /** A new on-demand table's warm throughput (developer guide, "warm throughput"): pre-warm above it. */
  newTableWarmReads: 12_000,
  newTableWarmWrites: 4_000,
  readUnitBytes: 4096,
  writeUnitBytes: 1024,
  /** An eventually consistent read (a Query of a global secondary index, always) costs half a read unit per 4 KB. */
  eventuallyConsistentShare: 0.5,
};

/** S3 Standard (https://aws.amazon.com/s3/pricing/); 5,500 GET/HEAD per second per partitioned prefix (S3 performance guidelines). */
export const S3 = {
  usdPerThousandGets: 0.0004,
  usdPerThousandPuts: 0.005,
  storageUsdPerGbMonth: 0.023,
  getsPerPrefix: 5500,
  putsPerPrefix: 3500,
};

/**
 * SNS (https://aws.amazon.com/sns/pricing/): $0.50 per million publishes
 * (a batch entry counts as one), deliveries to SQS free. Publish throughput
 * quota per account and region: 30,000 messages/s in us-east-1, 9,000 in
 * eu-west-1 and us-west-2, 1,500 elsewhere (SNS quotas page; adjustable).
 * SQS standard (https://aws.amazon.com/sqs/pricing/): $0.40 per million
 * requests, each up to 10 messages / 64 KiB; nearly unlimited throughput.
 */
export const MESSAGING = {
  snsUsdPerMillionPublishes: 0.5,
  snsPublishQuotaUsEast1: 30_000,
  snsPublishQuotaEuWest1: 9_000,
  sqsUsdPerMillionRequests: 0.4,
};

/**
 * Application Load Balancer (https://aws.amazon.com/elasticloadbalancing/pricing/):
 * $0.0225 per hour and $0.008 per LCU-hour; an LCU is 25 new connections/s,
 * 3,000 active connections, 1 GB/hour processed (EC2 and IP targets) or
 * 1,000 rule evaluations/s (the first 10 rules are free), whichever is most.
 * Cross-zone traffic between an ALB and its targets is not charged.
 */
export const ALB = {
  usdPerHour: 0.0225,
  usdPerLcuHour: 0.008,
  newConnectionsPerLcu: 25,
  activeConnectionsPerLcu: 3000,
  gbPerHourPerLcu: 1,
  /**
   * ALB quotas (docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html):
   * targets per ALB 1,000 (adjustable), a target group belongs to one load
   * balancer, reserved LCUs per ALB 15,000 (adjustable). AWS publishes no
   * throughput ceiling for one ALB (it scales); the LCU reservation is the
   * only per-ALB capacity it publishes, so the model plans one ALB per
   * 15,000 LCU.
   */
  targetsPerLoadBalancer: 1000,
  reservedLcuPerLoadBalancer: 15_000,
};

/**
 * Network Load Balancer (same pricing page, as transcribed from it on
 * 2026-09-20 by api-evangelist/amazon-elastic-load-balancing): $0.0225 per
 * hour and $0.006 per NLCU-hour; for TCP an NLCU is 800 new connections/s,
 * 100,000 active connections, 1 GB/hour processed. Targets per NLB per AZ:
 * 500 (NLB quotas page). TLS is passed through to the ingress tier.
 */
export const NLB = {
  usdPerHour: 0.0225,
  usdPerNlcuHour: 0.006,
  newConnectionsPerNlcu: 800,
  activeConnectionsPerNlcu: 100_000,
  gbPerHourPerNlcu: 1,
  targetsPerAz: 500,
};

/**
 * CloudFront (https://aws.amazon.com/cloudfront/pricing/, read 2026-12-07
 * from a stored copy of the page): data transfer out to the internet,
 * United States/Mexico/Canada and Europe/Israel/Türkiye, per GB and month:
 * $0.085 first 10 TB, $0.080 next 40 TB, $0.060 next 100 TB, $0.040 next
 * 350 TB, $0.030 next 524 TB, $0.025 next 4 PB, $0.020 over 5 PB. Origin
 * fetches from S3 are free. HTTPS requests $0.0100 per 10,000 in the US and
 * Europe (the figure of the brief: the stored copy of the page cut
 * off before the request table; check it). The always-free 1 TB and 10
 * million requests a month are left out (noise at this volume); committed
 * traffic gets private prices AWS does not publish.
 */
export const CLOUDFRONT = {
  tiers: [
    { upToGb: 10_000, usdPerGb: 0.085 },
    { upToGb: 50_000, usdPerGb: 0.08 },
    { upToGb: 150_000, usdPerGb: 0.06 },
    { upToGb: 500_000, usdPerGb: 0.04 },
    { upToGb: 1_024_000, usdPerGb: 0.03 },
    { upToGb: 5_120_000, usdPerGb: 0.025 },
    { upToGb: Infinity, usdPerGb: 0.02 },
  ],
  httpsUsdPer10kRequests: 0.01,
};

/**
 * Data transfer (https://aws.amazon.com/ec2/pricing/on-demand/, "Data
 * Transfer"): out to the internet per month $0.09/GB for the first 10 TB,
 * $0.085 for the next 40 TB, $0.07 for the next 100 TB, $0.05 above 150 TB;
 * between AZs $0.01/GB in each direction. DynamoDB and S3 through VPC gateway
 * endpoints: no transfer charge.
 */
export const TRANSFER = {
  internetTiers: [
    { upToGb: 10_000, usdPerGb: 0.09 },
    { upToGb: 50_000, usdPerGb: 0.085 },
    { upToGb: 150_000, usdPerGb: 0.07 },
    { upToGb: Infinity, usdPerGb: 0.05 },
  ],
  crossAzUsdPerGbEachWay: 0.01,
};

/** EKS (https://aws.amazon.com/eks/pricing/): $0.10 per cluster-hour; managed node groups: 450 nodes each, 30 per cluster (EKS quotas). */
export const EKS = { usdPerClusterHour: 0.1, nodesPerNodeGroup: 450, nodeGroupsPerCluster: 30 };

/** A month's bytes priced by tiers: each GB at the price of the tier it falls in (the first 10 TB at the first price, …). */
export function tieredUsd(gbPerMonth: number, tiers: ReadonlyArray<{ upToGb: number; usdPerGb: number }>): number {
  let usd = 0;
  let from = 0;
  for (const tier of tiers) {
    usd += Math.max(0, Math.min(gbPerMonth, tier.upToGb) - from) * tier.usdPerGb;
    from = tier.upToGb;
    if (gbPerMonth <= tier.upToGb) break;
  }
  return usd;
}

export function cloudFrontEgressUsd(gbPerMonth: number): number {
  return tieredUsd(gbPerMonth, CLOUDFRONT.tiers);
}

export function internetEgressUsd(gbPerMonth: number): number {
  return tieredUsd(gbPerMonth, TRANSFER.internetTiers);
}
