import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig } from '../config.ts';
import { ContentLifecycle } from '../documents/content-sweeper.ts';
import { documentStores } from '../documents/stores.ts';
import { uploadHome } from '../documents/uploads/upload-home.ts';
import { runEntryPoint } from './shutdown.ts';
import { runBackgroundLoop } from './ops-server.ts';

// The lifecycle worker process: every LIFECYCLE_INTERVAL_SECONDS it ends the
// resumable uploads past their expiry (their parts and tails removed), sweeps
// the documents bucket for content no committed document points to, and
// reports tombstones that DynamoDB TTL is late with. Serves /health/live,
// /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT it finishes
// the sweep in progress, closes its clients and exits 0. Any number of
// replicas may run: one sweeps at a time.
await runEntryPoint(async () => {
  const config = loadConfig();
  const aws = createAwsClients(config);
  await runBackgroundLoop(config, 'lifecycle', (ops) => {
    const lifecycle = new ContentLifecycle({
      ...documentStores(config, aws),
      uploads: uploadHome(config, aws),
      log: ops.log,
      graceMs: config.LIFECYCLE_ORPHAN_GRACE_SECONDS * 1000,
      leaseMs: config.LIFECYCLE_LEASE_SECONDS * 1000,
      intervalMs: config.LIFECYCLE_INTERVAL_SECONDS * 1000,
      registry: ops.registry,
    });
    return {
      loop: lifecycle,
      close: () => aws.destroy(),
      describe: { owner: lifecycle.owner, table: config.DOCUMENTS_TABLE, bucket: config.DOCUMENTS_BUCKET },
    };
  });
});
