import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import PinoPretty from 'pino-pretty';
import { startLocalStack } from './emulators.ts';
import { DEV_REDIRECT_MIN_BYTES, DevSettings } from './dev-settings.ts';
import { ensureResources } from '../bootstrap/resources.ts';
import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig, parseEnvironment } from '../config.ts';
import { RUNTIME_FLAGS } from '../processes/v8-flags.ts';

// `make dev`: the local stack and the processes of the service, in the
// foreground; Ctrl-C or SIGTERM stops all of it. The line "service on …"
// comes once the API and every background process answer /health/ready.

const settings = parseEnvironment(DevSettings, process.env);

const log = (message: string) => console.log(`[dev] ${message}`);

/** Every port is checked before anything starts, so a taken one is named with the variable that moves it. */
const portVariables = Object.keys(DevSettings.properties).filter((key) => key !== 'HOST') as (keyof typeof settings)[];
const taken: string[] = [];
for (const variable of portVariables) {
  const port = Number(settings[variable]);
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: settings.HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
  if (!free) taken.push(`${variable}=${port}`);
}
if (taken.length > 0) {
  console.error(`[dev] in use already: ${taken.join(', ')} (another make dev?). Set another port, e.g. ${taken[0]!.split('=')[0]}=${Number(taken[0]!.split('=')[1]) + 100} make dev`);
  process.exit(1);
}

const stack = await startLocalStack({
  aws: settings.AWS_EMULATOR_PORT,
  dynamodb: settings.DYNAMODB_EMULATOR_PORT,
  redis: settings.REDIS_PORT,
}).catch((error: Error) => {
  console.error(`[dev] could not start the local stack: ${error.message}`);
  console.error(`[dev] is something else using the ports? Set ${portVariables.join(', ')}.`);
  process.exit(1);
});
log(`DynamoDB emulator on :${stack.ports.dynamodb}, S3/SNS/SQS emulator on :${stack.ports.aws}, Redis on :${stack.ports.redis}`);

// Dummy credentials and endpoints, for this process's SDK and the children's.
Object.assign(process.env, stack.env);
const env = { DOCUMENT_REDIRECT_MIN_BYTES: String(DEV_REDIRECT_MIN_BYTES), ...process.env, HOST: settings.HOST, NODE_ENV: 'development' };
try {
  const config = loadConfig(env);
  const aws = createAwsClients(config);
  await ensureResources(config, aws, log);
  aws.destroy();
} catch (error) {
  console.error('[dev] could not create the resources:', error);
  await stack.stop();
  process.exit(1);
}

const here = fileURLToPath(new URL('..', import.meta.url));
/**
 * The processes of the service, each on its own port: the API serves on PORT,
 * a background process serves its probes and metrics on METRICS_PORT.
 */
const processes: { name: string; entry: string; portVariable: 'PORT' | 'METRICS_PORT'; port: number }[] = [
  { name: 'api', entry: 'processes/api.ts', portVariable: 'PORT', port: settings.PORT },
  { name: 'relay', entry: 'processes/relay.ts', portVariable: 'METRICS_PORT', port: settings.RELAY_METRICS_PORT },
  { name: 'consumer', entry: 'processes/order-consumer.ts', portVariable: 'METRICS_PORT', port: settings.CONSUMER_METRICS_PORT },
  { name: 'content-sweeper', entry: 'processes/content-sweeper.ts', portVariable: 'METRICS_PORT', port: settings.LIFECYCLE_METRICS_PORT },
];

const children: ChildProcess[] = [];
let stopping = false;

const started: typeof processes = [];
for (const proc of processes) {
  const { name, entry, portVariable, port } = proc;
  if (!existsSync(`${here}${entry}`)) continue;
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, `${here}${entry}`], {
    env: { ...env, [portVariable]: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.pipe(PinoPretty({ messageFormat: `${name}: {msg}`, ignore: 'pid,hostname,process', singleLine: true }));
  child.once('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  children.push(child);
  started.push(proc);
}

// Announced only when it is true: every process answers /health/ready. A
// process that dies first stops everything (above), which ends this wait too.
const probeHost = settings.HOST === '0.0.0.0' || settings.HOST === '::' ? '127.0.0.1' : settings.HOST;
const ready = (port: number) =>
  fetch(`http://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${port}/health/ready`, { signal: AbortSignal.timeout(2000) }).then(
    (response) => response.status === 200,
    () => false,
  );
for (const { port } of started) {
  while (!stopping && !(await ready(port))) await new Promise((resolve) => setTimeout(resolve, 100));
}
if (!stopping) {
  for (const { name, portVariable, port } of started) {
    if (portVariable === 'METRICS_PORT') log(`${name}: /health/ready and /metrics on http://localhost:${port}`);
  }
  log(`service on http://localhost:${settings.PORT} (try: curl localhost:${settings.PORT}/health); Ctrl-C stops everything`);
}

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  log('stopping');
  await Promise.all(
    children
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        return exited;
      }),
  );
  await stack.stop();
  process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
