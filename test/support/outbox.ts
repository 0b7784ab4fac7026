import type { OutboxRelay, RelaySweep } from '../../src/outbox/outbox-relay.ts';

/**
 * Sweeps, as the relay's loop does, until a sweep claims nothing (or one
 * fails): what every sweep claimed, published and failed, summed.
 */
export async function drain<E extends { id: string }>(relay: OutboxRelay<E>, maxSweeps = 100): Promise<RelaySweep> {
  const total: RelaySweep = { claimed: 0, published: 0, failed: 0 };
  for (let i = 0; i < maxSweeps; i++) {
    const result = await relay.sweep();
    total.claimed += result.claimed;
    total.published += result.published;
    total.failed += result.failed;
    if (result.claimed === 0 || result.failed > 0) break;
  }
  return total;
}
