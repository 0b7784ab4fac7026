import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

// Ranks 1..n drawn with P(k) ∝ k^-s, in constant time per draw whatever n,
// by rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to
// generate variates from monotone discrete distributions", ACM TOMACS 1996).
// No maintained npm package draws a bounded Zipf over 10^8 ranks without a
// table of n entries; this is the textbook method, written out.

/** (e^x - 1) / x, accurate near 0. */
function expm1OverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x / 2;
}

/** ln(1 + x) / x, accurate near 0. */
function log1pOverX(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x / 2;
}

export class ZipfSampler {
  readonly n: number;
  readonly exponent: number;
  private readonly rng: RandomGenerator;
  private readonly hIntegralX1: number;
  private readonly hIntegralN: number;
  private readonly squeeze: number;

  constructor(n: number, exponent: number, rng: RandomGenerator) {
    if (!(n >= 1) || !(exponent > 0)) throw new Error(`Zipf needs n ≥ 1 and an exponent > 0 (got ${n}, ${exponent})`);
    this.n = n;
    this.exponent = exponent;
    this.rng = rng;
    this.hIntegralX1 = this.hIntegral(1.5) - 1;
    this.hIntegralN = this.hIntegral(n + 0.5);
    this.squeeze = 2 - this.hIntegralInverse(this.hIntegral(2.5) - this.h(2));
  }

  /** x^-s */
  private h(x: number): number {
    return Math.exp(-this.exponent * Math.log(x));
  }

  /** An antiderivative of h, continuous in s at s = 1. */
  private hIntegral(x: number): number {
    const logX = Math.log(x);
    return expm1OverX((1 - this.exponent) * logX) * logX;
  }

  private hIntegralInverse(x: number): number {
    const t = Math.max(-1, x * (1 - this.exponent));
    return Math.exp(log1pOverX(t) * x);
  }

  next(): number {
    for (;;) {
      const u = this.hIntegralN + uniformFloat64(this.rng) * (this.hIntegralX1 - this.hIntegralN);
      const x = this.hIntegralInverse(u);
      const k = Math.min(this.n, Math.max(1, Math.floor(x + 0.5)));
      if (k - x <= this.squeeze || u >= this.hIntegral(k + 0.5) - this.h(k)) return k;
    }
  }
}

/** A well-mixed 32-bit hash of an integer (for deterministic per-document properties and key sampling). */
export function mix32(value: number): number {
  let x = Math.imul(value ^ (value >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
