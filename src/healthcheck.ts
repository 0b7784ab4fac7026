import { loadConfig } from './config.ts';

// The container HEALTHCHECK (Dockerfile, compose): GET a health route of this
// process on 127.0.0.1 and exit 0 on 200, 1 otherwise, within 2 s.
//   node dist/healthcheck.js [path] [PORT|METRICS_PORT]
// Defaults: /health/live on PORT (the API). The relay and the consumer serve
// theirs on METRICS_PORT. A script rather than an inline `node -e`: podman's
// Docker API splits a health check's arguments at spaces.
const [path = '/health/live', portKey = 'PORT'] = process.argv.slice(2);
if (!path.startsWith('/health') || (portKey !== 'PORT' && portKey !== 'METRICS_PORT')) {
  console.error('usage: node dist/healthcheck.js [/health/...] [PORT|METRICS_PORT]');
  process.exit(2);
}
const config = loadConfig();
const healthy = await fetch(`http://127.0.0.1:${config[portKey]}${path}`, { signal: AbortSignal.timeout(2000) }).then(
  (response) => response.status === 200,
  () => false,
);
process.exit(healthy ? 0 : 1);
