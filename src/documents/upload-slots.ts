import type { Gauge } from 'prom-client';
import { Errors } from '../errors.ts';

/**
 * The uploads a process takes at once (each holds a part buffer), bounded in
 * all and per tenant: one tenant holding its whole share leaves the rest to
 * the others. A one-request upload above the inline size and a resumable
 * append take a slot alike. Past either bound, 503 OVERLOADED with
 * Retry-After: the client retries, on this instance or another.
 */
export class UploadSlots {
  private readonly max: number;
  private readonly perTenant: number;
  private readonly gauge: Pick<Gauge, 'set'>;
  private total = 0;
  private readonly byTenant = new Map<string, number>();

  constructor(options: { max: number; perTenant: number; gauge: Pick<Gauge, 'set'> }) {
    this.max = options.max;
    this.perTenant = options.perTenant;
    this.gauge = options.gauge;
  }

  /** A slot for `tenant`, or 503; the function gives it back (once, however often it is called). */
  take(tenant: string): () => void {
    const held = this.byTenant.get(tenant) ?? 0;
    if (this.total >= this.max || held >= this.perTenant) throw new Errors.Overloaded();
    this.total += 1;
    this.byTenant.set(tenant, held + 1);
    this.gauge.set(this.total);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.byTenant.get(tenant) ?? 1) - 1;
      if (left === 0) this.byTenant.delete(tenant);
      else this.byTenant.set(tenant, left);
      this.gauge.set(this.total);
    };
  }
}
