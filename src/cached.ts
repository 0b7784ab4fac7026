/**
 * `load`, called at most once per `ms`: callers within that time (and those
 * while it runs) share one promise. For reads that probes and scrapes repeat
 * (health checks, gauges read from a table or a queue), so that they cannot
 * turn into load on what they read. A rejection is shared for `ms` too.
 */
export function cachedFor<T>(ms: number, load: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const at = now();
    if (!last || at - last.at >= ms) last = { at, value: load() };
    return last.value;
  };
}
