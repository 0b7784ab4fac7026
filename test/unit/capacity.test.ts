import { readFileSync } from 'node:fs';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { describe, expect, it } from 'vitest';
import { DOCUMENT, generate } from '../../bench/capacity/capacity.ts';
import { hotReadAt } from '../../bench/capacity/model.ts';
import { ZipfSampler } from '../../bench/capacity/zipf.ts';

describe('capacity model (make capacity)', () => {
  it('draws ranks with the Zipf probabilities', () => {
    const n = 20;
    const draws = 400_000;
    const zipf = new ZipfSampler(n, 1.1, xoroshiro128plus(7));
    const counts = new Array<number>(n + 1).fill(0);
    for (let i = 0; i < draws; i++) counts[zipf.next()]!++;
    let norm = 0;
    for (let k = 1; k <= n; k++) norm += k ** -1.1;
    for (let k = 1; k <= n; k++) {
      const expected = (draws * k ** -1.1) / norm;
      // Five standard deviations of a binomial count: a seeded run, so this is exact, but it must also hold for any seed.
      expect(Math.abs(counts[k]! - expected)).toBeLessThan(5 * Math.sqrt(expected));
    }
    expect(counts[0]).toBe(0);
  });

  it('prices a hot read at another ratio to the ceiling by the CPU that ratio implies', () => {
    const bench = { hotMsPerRead: 0.03, hotRatioToCeiling: 0.5, coldMsPerRead: 0.4 };
    // Half the ceiling's req/s at 0.03 ms an answer: the ceiling's core answers in 0.015 ms, 0.75 of it in 0.02.
    expect(hotReadAt(bench, 0.75).hotMsPerRead).toBeCloseTo(0.02, 12);
    expect(hotReadAt(bench, 0.25).hotMsPerRead).toBeCloseTo(0.06, 12);
    expect(hotReadAt(bench, 0.75).coldMsPerRead).toBe(0.4);
  });

  // The simulation takes about 10 s on a quiet 2-core machine; the bound leaves room for a loaded one.
  it('docs/capacity.md is what the script generates from the committed parameters and bench results', { timeout: 120_000 }, () => {
    const committed = readFileSync(DOCUMENT, 'utf8');
    const generated = generate().markdown;
    if (committed !== generated) {
      throw new Error('docs/capacity.md is out of date: run `make capacity` and commit the result');
    }
    expect(generated).toContain('## The deployment at the targets');
  });
});
