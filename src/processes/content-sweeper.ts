import { ContentSweeper, sweptStores } from '../documents/content-sweeper.ts';
import { background, runProcess } from './runtime.ts';

// The content sweeper: every LIFECYCLE_INTERVAL_SECONDS it ends the
// resumable uploads past their expiry (their parts and tails removed), sweeps
// the documents bucket for content no committed document points to, and
// reports tombstones that DynamoDB TTL is late with. Serves /health/live,
// /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT it finishes
// the sweep in progress, closes its clients and exits 0. Any number of
// replicas may run: one sweeps at a time. Of several regions, each region's
// sweeper judges only the objects of documents homed in it.
await runProcess({
  name: 'content-sweeper',
  serve: background(async ({ config, log, aws, onClose }, registry) => {
    const { close, ...stores } = sweptStores(config, aws());
    onClose(close);
    const sweeper = new ContentSweeper({
      ...stores,
      log,
      graceMs: config.LIFECYCLE_ORPHAN_GRACE_SECONDS * 1000,
      leaseMs: config.LIFECYCLE_LEASE_SECONDS * 1000,
      intervalMs: config.LIFECYCLE_INTERVAL_SECONDS * 1000,
      registry,
    });
    return {
      loop: sweeper,
      describe: { owner: sweeper.owner, table: config.DOCUMENTS_TABLE, bucket: config.DOCUMENTS_BUCKET },
    };
  }),
});
