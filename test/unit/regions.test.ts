import { describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { ConfigError } from '../../src/config.ts';
import { configFor } from '../support/config.ts';
import { StaleReads } from '../../src/documents/stale-reads.ts';
import { Regions, ordersConfig } from '../../src/adapters/regions.ts';

const three = 'us-east-1=docs-use1,eu-west-1=docs-euw1,ap-northeast-1=docs-apne1';
const regionsOf = (list: string, local = 'us-east-1') =>
  new Regions(configFor({ AWS_REGION: local, DOCUMENTS_BUCKET: list.split(',').find((pair) => pair.startsWith(`${local}=`))!.split('=')[1]!, DOCUMENT_REGIONS: list }));

describe('Regions', () => {
  it('is one region, at home everywhere, without DOCUMENT_REGIONS', () => {
    const regions = new Regions(configFor({ AWS_REGION: 'eu-west-1' }));
    expect(regions.multi).toBe(false);
    expect(regions.names).toEqual(['eu-west-1']);
    expect(regions.primary).toBe('eu-west-1');
    expect(regions.homeOf('public#x')).toBe('eu-west-1');
  });

  it('gives every key one home, the same in every region, spread evenly', () => {
    const fromUs = regionsOf(three, 'us-east-1');
    const fromEu = regionsOf(three, 'eu-west-1');
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const home = fromUs.homeOf(`public#doc-${i}`);
      expect(fromEu.homeOf(`public#doc-${i}`)).toBe(home);
      counts.set(home, (counts.get(home) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['ap-northeast-1', 'eu-west-1', 'us-east-1']);
    for (const count of counts.values()) expect(count).toBeGreaterThan(900); // 1000 ± 10%
  });

  it('moves only the keys of a region that leaves the list (rendezvous hashing)', () => {
    const before = regionsOf(three);
    const after = regionsOf('us-east-1=docs-use1,eu-west-1=docs-euw1');
    for (let i = 0; i < 1000; i++) {
      const key = `public#doc-${i}`;
      if (before.homeOf(key) !== 'ap-northeast-1') expect(after.homeOf(key)).toBe(before.homeOf(key));
    }
  });

  it("makes the clients of another region from its endpoints and bucket, and the orders path from the primary's", () => {
    const config = configFor({
      AWS_REGION: 'eu-west-1',
      DOCUMENTS_BUCKET: 'docs-euw1',
      DOCUMENT_REGIONS: three,
      REGION_ENDPOINT_URLS: 'us-east-1=http://127.0.0.1:1',
      REGION_ENDPOINT_URLS_DYNAMODB: 'us-east-1=http://127.0.0.1:2',
    });
    const regions = new Regions(config);
    expect(regions.primary).toBe('us-east-1');
    expect(regions.configOf('eu-west-1')).toBe(config);
    expect(regions.configOf('us-east-1')).toMatchObject({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:2',
      AWS_ENDPOINT_URL_S3: undefined,
      DOCUMENTS_BUCKET: 'docs-use1',
    });
    // On AWS no endpoints are set: the SDK derives them from the region.
    expect(regions.configOf('ap-northeast-1').AWS_ENDPOINT_URL).toBeUndefined();
    expect(ordersConfig(config).AWS_REGION).toBe('us-east-1');
  });

  it('refuses a list without this region, with another bucket for it, or with a region twice', () => {
    const problem = (overrides: Parameters<typeof configFor>[0]) => {
      try {
        configFor(overrides);
        return undefined;
      } catch (error) {
        return (error as ConfigError).problems.join(' ');
      }
    };
    expect(problem({ AWS_REGION: 'us-west-2', DOCUMENT_REGIONS: three })).toMatch(/must list AWS_REGION/);
    expect(problem({ AWS_REGION: 'us-east-1', DOCUMENTS_BUCKET: 'other', DOCUMENT_REGIONS: three })).toMatch(/must be DOCUMENTS_BUCKET/);
    expect(problem({ AWS_REGION: 'us-east-1', DOCUMENTS_BUCKET: 'docs-use1', DOCUMENT_REGIONS: 'us-east-1=docs-use1,us-east-1=docs-b' })).toMatch(/twice/);
    expect(problem({ DOCUMENT_REGIONS: 'not a list' })).toMatch(/^DOCUMENT_REGIONS/);
  });
});

describe('StaleReads', () => {
  const counterOf = () => new Counter({ name: 'stale', help: 'stale', labelNames: ['origin'], registers: [new Registry()] });

  it('counts the reads of the document served after its deletion, each once, by origin', async () => {
    let now = 1000;
    const counter = counterOf();
    const reads = new StaleReads(counter, () => now);
    for (const [at, id] of [
      [1000, 'x'],
      [1001, 'y'],
      [1002, 'x'],
      [1003, 'x'],
      [1004, 'y'],
    ] as const) {
      now = at;
      reads.served('public', id);
    }
    expect(reads.deleted('public', 'x', 1001, 'eu-west-1')).toBe(2); // at 1002 and 1003
    expect(reads.deleted('public', 'x', 1001, 'eu-west-1')).toBe(0); // redelivered: counted already
    expect(reads.deleted('acme', 'y', 0, 'eu-west-1')).toBe(0); // another tenant's y
    expect(reads.deleted('public', 'y', 1002, 'ap-northeast-1')).toBe(1);
    expect((await counter.get()).values.map(({ labels, value }) => [labels.origin, value])).toEqual([
      ['eu-west-1', 2],
      ['ap-northeast-1', 1],
    ]);
  });
});
