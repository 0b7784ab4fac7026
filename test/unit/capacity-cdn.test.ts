import { describe, expect, it } from 'vitest';
import { cloudFrontEgressUsd, internetEgressUsd } from '../../bench/capacity/aws.ts';
import { albCount, cdnHitRatio, cdnTier, linkBucketSeconds, linkMemoHitRatio } from '../../bench/capacity/model.ts';

// The CDN tier, the tiered prices and the load balancer count of the capacity
// model (issue 21), each against figures worked out by hand from the published
// prices and quotas, not against the functions' own output.

describe('capacity model: CDN, tiered prices, load balancers', () => {
  it('prices CloudFront bytes by its tiers', () => {
    // 60 TB: 10 TB at $0.085, 40 TB at $0.080, 10 TB at $0.060.
    expect(cloudFrontEgressUsd(60_000)).toBeCloseTo(850 + 3_200 + 600, 6);
    // 6 PB: every tier, then 880 TB above 5 PB (5,120 TB) at $0.020.
    expect(cloudFrontEgressUsd(6_000_000)).toBeCloseTo(850 + 3_200 + 6_000 + 14_000 + 15_720 + 102_400 + 17_600, 6);
    // Inside the first tier only.
    expect(cloudFrontEgressUsd(1_000)).toBeCloseTo(85, 6);
  });

  it('prices EC2 internet egress by its tiers', () => {
    // 200 TB: 10 TB at $0.09, 40 TB at $0.085, 100 TB at $0.07, 50 TB at $0.05.
    expect(internetEgressUsd(200_000)).toBeCloseTo(900 + 3_400 + 7_000 + 2_500, 6);
  });

  it('counts ALBs by reservable LCU and by targets, whichever needs more', () => {
    expect(albCount(179_901, 2_411)).toEqual({ byLcu: 12, byTargets: 3, count: 12 });
    expect(albCount(10_000, 2_500)).toEqual({ byLcu: 1, byTargets: 3, count: 3 });
    expect(albCount(0, 0).count).toBe(1);
  });

  it('sends through links only documents in S3 at least the redirect size, and prices them', () => {
    const classes = [
      { bytes: 1024, reads: 600 },
      { bytes: 16_384, reads: 300 },
      { bytes: 131_072, reads: 90 },
      { bytes: 1_048_576, reads: 10 },
    ];
    const parameters = {
      cdn: { enabled: true, redirectMinBytes: 131_072, followShare: 0.5, linkResponseBytes: 900, memoHitCpuMsPerLink: 0.05, uncachedCpuMsPerLink: 1.3, linkTtlSeconds: 300, linkMemoMaxEntries: 10_000, linkMemoMaxBytes: 16_777_216, linkMemoEntryBytes: 1_754, cacheLocations: 10, retentionSeconds: 3600 },
      documents: { inlineMaxBytes: 16_384 },
      api: { responseHeaderBytes: 400 },
      transfer: { priceFactor: 1 },
    };
    const tier = cdnTier(classes, parameters, 0.9, 2);
    // Half of the 128 KiB and 1 MiB reads: 45 + 5.
    expect(tier.perClass.map((entry) => entry.viaLink)).toEqual([0, 0, 45, 5]);
    expect(tier.viaLink).toBe(50);
    expect(tier.bytesPerSecond).toBe(45 * (131_072 + 400) + 5 * (1_048_576 + 400));
    // Misses: 10% of the linked reads, plus each new document's first read at each of 10 caches,
    // new documents in a class in proportion to its reads (90 and 10 of 1,000): 2 × 0.09 × 10 + 2 × 0.01 × 10.
    expect(tier.originFetches).toBeCloseTo(5 + 1.8 + 0.2, 9);
    // A month of 730 h: requests at $0.01 per 10,000.
    expect(tier.requestsUsd).toBeCloseTo(((50 * 730 * 3600) / 10_000) * 0.01, 6);
    const gb = (tier.bytesPerSecond * 730 * 3600) / 1e9;
    expect(tier.gbPerMonth).toBeCloseTo(gb, 6);

    const off = cdnTier(classes, { ...parameters, cdn: { ...parameters.cdn, enabled: false } }, 0.9, 2);
    expect(off.viaLink).toBe(0);
    expect(off.originFetches).toBe(0);
  });

  it('gives the hit ratio of Che\'s approximation for a small Zipf catalogue', () => {
    // Three documents, exponent 1: rates 1, 1/2, 1/3 of reads/H with H = 11/6; 6 reads/s, 1 cache, 1 s:
    // λ = 36/11, 18/11, 12/11; hit = Σ λ(1 - e^-λ) / Σ λ.
    const rates = [36 / 11, 18 / 11, 12 / 11];
    const expected = rates.reduce((sum, rate) => sum + rate * (1 - Math.exp(-rate)), 0) / 6;
    expect(cdnHitRatio(6, 3, 1, 1, 1)).toBeCloseTo(expected, 12);
    // Spreading over more caches lowers it; a longer retention raises it.
    expect(cdnHitRatio(6, 3, 1, 4, 1)).toBeLessThan(expected);
    expect(cdnHitRatio(6, 3, 1, 1, 10)).toBeGreaterThan(expected);
  });

  it('gives the memo hit ratio of links for a small Zipf catalogue, by hand', () => {
    // Three documents, exponent 1: p = 6/11, 3/11, 2/11. Two links in a bucket: the second is a hit
    // when it is the first's document, Σ p² = 49/121, so 49/121 hits in 2 requests: 49/242.
    // E[distinct] = Σ 1 - (1 - p)² = 2 - 49/121 = 193/121.
    const memo = linkMemoHitRatio(3, 1, 2);
    expect(memo.distinct).toBeCloseTo(193 / 121, 12);
    expect(memo.hit).toBeCloseTo(49 / 242, 12);
    expect(memo.capped).toBe(false);
    // A memo of one URL (fewer than the 193/121 distinct): only the most linked document can hit,
    // when both links are to it: (6/11)² / 2 = 36/242.
    const capped = linkMemoHitRatio(3, 1, 2, 1);
    expect(capped.capped).toBe(true);
    expect(capped.hit).toBeCloseTo(36 / 242, 12);
    // A memo as large as the distinct count: no bound.
    expect(linkMemoHitRatio(3, 1, 2, 2).hit).toBeCloseTo(49 / 242, 12);
    expect(linkMemoHitRatio(3, 1, 0).hit).toBe(0);
  });

  it('raises the memo hit ratio with the links per bucket, lowers it with the documents and the bound', () => {
    const hits = [1, 10, 100, 1_000, 10_000].map((n) => linkMemoHitRatio(100_000, 1, n).hit);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!).toBeGreaterThan(hits[i - 1]!);
    expect(hits[0]).toBeCloseTo(0, 12);
    expect(linkMemoHitRatio(1_000_000, 1, 1_000).hit).toBeLessThan(linkMemoHitRatio(100_000, 1, 1_000).hit);
    // A steeper popularity concentrates the links: more hits.
    expect(linkMemoHitRatio(100_000, 1.2, 1_000).hit).toBeGreaterThan(linkMemoHitRatio(100_000, 1, 1_000).hit);
    const bounded = [100, 300, 1_000].map((entries) => linkMemoHitRatio(100_000, 1, 10_000, entries).hit);
    expect(bounded[0]!).toBeLessThan(bounded[1]!);
    expect(bounded[1]!).toBeLessThan(bounded[2]!);
    expect(bounded[2]!).toBeLessThan(hits[4]!);
    // The expiry bucket of src/documents/links.ts: min(60 s, TTL / 5).
    expect(linkBucketSeconds(300)).toBe(60);
    expect(linkBucketSeconds(100)).toBe(20);
  });

  it('integrates the tail past a million documents as the plain sum would', () => {
    // 3 million documents: the function sums the first million and integrates the rest; here every term is summed.
    const [n, s, reads, locations, seconds] = [3_000_000, 1, 2_000, 5, 600];
    let norm = 0;
    for (let k = 1; k <= n; k++) norm += k ** -s;
    let hits = 0;
    for (let k = 1; k <= n; k++) {
      const rate = (reads * k ** -s) / norm;
      hits += rate * (1 - Math.exp((-rate * seconds) / locations));
    }
    expect(cdnHitRatio(reads, n, s, locations, seconds)).toBeCloseTo(hits / reads, 4);
  });

  it('integrates the memo of links past a million documents as the plain sum would', () => {
    // 3 million documents; 30 million links (about 2.5 million distinct documents), so that a memo of
    // 1.5 million is reached and its bound integrated past the first million too. Every term summed here.
    const [documents, s, n, entries] = [3_000_000, 1, 30_000_000, 1_500_000];
    let norm = 0;
    for (let j = 1; j <= documents; j++) norm += j ** -s;
    let [distinct, distinctOfTop, shareOfTop] = [0, 0, 0];
    for (let j = 1; j <= documents; j++) {
      const p = j ** -s / norm;
      const seen = 1 - (1 - p) ** n;
      distinct += seen;
      if (j <= entries) [distinctOfTop, shareOfTop] = [distinctOfTop + seen, shareOfTop + p];
    }
    const open = linkMemoHitRatio(documents, s, n);
    expect(open.distinct / distinct).toBeCloseTo(1, 6);
    expect(open.hit).toBeCloseTo(1 - distinct / n, 6);
    const capped = linkMemoHitRatio(documents, s, n, entries);
    expect(capped.capped).toBe(true);
    expect(capped.hit).toBeCloseTo(1 - (distinctOfTop + n * (1 - shareOfTop)) / n, 6);
  });
});
