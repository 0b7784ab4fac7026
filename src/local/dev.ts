import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Type } from 'typebox';
import PinoPretty from 'pino-pretty';
import { startLocalStack } from './emulators.ts';
import { ensureResources } from '../bootstrap/resources.ts';
import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig, parseEnvironment } from '../config.ts';
import { RUNTIME_FLAGS } from '../runtime-flags.ts';

// `make dev`: the local stack and the four processes of the service, in the
// foreground; Ctrl-C or SIGTERM stops all of it.

const DevPorts = Type.Object({
  PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 3000 }),
  AWS_EMULATOR_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 4566 }),
  DYNAMODB_EMULATOR_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 8000 }),
  REDIS_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 6379 }),
});
const ports = parseEnvironment(DevPorts, process.env);

const log = (message: string) => console.log(`[dev] ${message}`);

const stack = await startLocalStack({
  aws: ports.AWS_EMULATOR_PORT,
  dynamodb: ports.DYNAMODB_EMULATOR_PORT,
  redis: ports.REDIS_PORT,
}).catch((error: Error) => {
  console.error(`[dev] could not start the local stack: ${error.message}`);
  console.error('[dev] is something else using the ports? Set PORT, AWS_EMULATOR_PORT, DYNAMODB_EMULATOR_PORT, REDIS_PORT.');
  process.exit(1);
});
log(`DynamoDB emulator on :${stack.ports.dynamodb}, S3/SNS/SQS emulator on :${stack.ports.aws}, Redis on :${stack.ports.redis}`);

// Dummy credentials and endpoints, for this process's SDK and the children's.
Object.assign(process.env, stack.env);
// Loopback unless HOST says otherwise: nothing of make dev is reachable from the network.
const env = { ...process.env, HOST: process.env.HOST ?? '127.0.0.1', PORT: String(ports.PORT), NODE_ENV: 'development' };
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
const processes: { name: string; entry: string; env: Record<string, string> }[] = [
  { name: 'api', entry: 'server.ts', env: {} },
  { name: 'relay', entry: 'worker.ts', env: { METRICS_PORT: '9464' } },
  { name: 'consumer', entry: 'consumer.ts', env: { METRICS_PORT: '9465' } },
  { name: 'lifecycle', entry: 'lifecycle-worker.ts', env: { METRICS_PORT: '9466' } },
];

const children: ChildProcess[] = [];
let stopping = false;

for (const { name, entry, env: extra } of processes) {
  if (!existsSync(`${here}${entry}`)) continue;
  const child = spawn(process.execPath, [...RUNTIME_FLAGS, `${here}${entry}`], { env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.pipe(PinoPretty({ messageFormat: `${name}: {msg}`, ignore: 'pid,hostname', singleLine: true }));
  child.once('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping everything`);
      void stop(1);
    }
  });
  children.push(child);
}
log(`service on http://localhost:${ports.PORT} (try: curl localhost:${ports.PORT}/health); Ctrl-C stops everything`);

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
