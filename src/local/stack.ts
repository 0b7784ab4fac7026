import { createConnection } from 'node:net';
import { parseEnvironment } from '../config.ts';
import { startLocalStack } from './emulators.ts';
import { EmulatorPorts } from './ports.ts';

// The local stack of `make dev` (dynalite, fauxqs, redis-server) on its own,
// in the foreground: what the `emulators` image runs for
// docker-compose.emulators.yml. Ports come from AWS_EMULATOR_PORT,
// DYNAMODB_EMULATOR_PORT and REDIS_PORT. `stack.js check` is its health
// check: exit 0 when all three accept connections.
const ports = parseEnvironment(EmulatorPorts, process.env);
const all = [ports.AWS_EMULATOR_PORT, ports.DYNAMODB_EMULATOR_PORT, ports.REDIS_PORT];

if (process.argv[2] === 'check') {
  const accepts = (port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1', timeout: 2000 });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('timeout', () => (socket.destroy(), resolve(false)));
      socket.once('error', () => resolve(false));
    });
  const results = await Promise.all(all.map(accepts));
  process.exit(results.every(Boolean) ? 0 : 1);
}

const stack = await startLocalStack({
  aws: ports.AWS_EMULATOR_PORT,
  dynamodb: ports.DYNAMODB_EMULATOR_PORT,
  redis: ports.REDIS_PORT,
});
console.log(
  `emulators ready: S3/SNS/SQS on :${stack.ports.aws}, DynamoDB on :${stack.ports.dynamodb}, Redis on :${stack.ports.redis}`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await stack.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
