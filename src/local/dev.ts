import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type } from 'typebox';
import PinoPretty from 'pino-pretty';
import { freePort, startLocalStack } from './emulators.ts';
import { EmulatorPorts } from './ports.ts';
import { ensureResources } from '../bootstrap/resources.ts';
import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig, parseEnvironment } from '../config.ts';
import { RUNTIME_FLAGS } from '../runtime-flags.ts';

// `make dev`: the local stack and the processes of the service, in the
// foreground; Ctrl-C or SIGTERM stops all of it.

const OptionalPort = (description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description }));
const DevSettings = Type.Object({
  // Loopback unless told otherwise: a laptop's dev stack is nobody else's business.
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 3000 }),
  ...EmulatorPorts.properties,
  RELAY_METRICS_PORT: OptionalPort("The relay's /health and /metrics (a free port when unset)"),
  CONSUMER_METRICS_PORT: OptionalPort("The consumer's /health and /metrics (a free port when unset)"),
  LIFECYCLE_METRICS_PORT: OptionalPort("The lifecycle worker's /health and /metrics (a free port when unset)"),
});
const settings = parseEnvironment(DevSettings, process.env);

const log = (message: string) => console.log(`[dev] ${message}`);

const stack = await startLocalStack({
  aws: settings.AWS_EMULATOR_PORT,
  dynamodb: settings.DYNAMODB_EMULATOR_PORT,
  redis: settings.REDIS_PORT,
}).catch((error: Error) => {
  console.error(`[dev] could not start the local stack: ${error.message}`);
  console.error(`[dev] is something else using the ports? Set ${Object.keys(DevSettings.properties).filter((key) => key !== 'HOST').join(', ')}.`);
  process.exit(1);
});
log(`DynamoDB emulator on :${stack.ports.dynamodb}, S3/SNS/SQS emulator on :${stack.ports.aws}, Redis on :${stack.ports.redis}`);

// Dummy credentials and endpoints, for this process's SDK and the children's.
Object.assign(process.env, stack.env);
const env = { ...process.env, HOST: settings.HOST, NODE_ENV: 'development' };
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
  { name: 'api', entry: 'server.ts', portVariable: 'PORT', port: settings.PORT },
  { name: 'relay', entry: 'worker.ts', portVariable: 'METRICS_PORT', port: settings.RELAY_METRICS_PORT ?? (await freePort()) },
  { name: 'consumer', entry: 'consumer.ts', portVariable: 'METRICS_PORT', port: settings.CONSUMER_METRICS_PORT ?? (await freePort()) },
  { name: 'lifecycle', entry: 'lifecycle-worker.ts', portVariable: 'METRICS_PORT', port: settings.LIFECYCLE_METRICS_PORT ?? (await freePort()) },
];

const children: ChildProcess[] = [];
let stopping = false;

for (const { name, entry, portVariable, port } of processes) {
  if (!existsSync(`${here}${entry}`)) continue;
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, `${here}${entry}`], {
    env: { ...env, [portVariable]: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.pipe(PinoPretty({ messageFormat: `${name}: {msg}`, ignore: 'pid,hostname', singleLine: true }));
  child.once('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  children.push(child);
  if (portVariable === 'METRICS_PORT') log(`${name}: /health/ready and /metrics on http://localhost:${port}`);
}
log(`service on http://localhost:${settings.PORT} (try: curl localhost:${settings.PORT}/health); Ctrl-C stops everything`);

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
