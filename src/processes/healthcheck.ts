// The container HEALTHCHECK (Dockerfile, compose): GET a health route of this
// process on 127.0.0.1; exit 0 on 200, 1 otherwise, within 2 s.
//   node dist/processes/healthcheck.js PORT [PATH]     PATH defaults to /health/live
// The port is an argument, not read from the environment: this imports
// nothing, so a check costs a bare Node start (about 0.15 s) instead of the
// configuration's schema library (about 1 s of CPU every few seconds, per
// container). A script rather than an inline `node -e`: podman's Docker API
// splits a health check's arguments at spaces.
const [portArgument = '', path = '/health/live'] = process.argv.slice(2);
const port = Number(portArgument);
if (!Number.isInteger(port) || port < 1 || port > 65535 || !path.startsWith('/health')) {
  console.error('usage: node dist/processes/healthcheck.js PORT [/health/...]');
  process.exit(2);
}
const healthy = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) }).then(
  (response) => response.status === 200,
  () => false,
);
process.exit(healthy ? 0 : 1);
