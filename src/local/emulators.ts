import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, createConnection, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { existsSync } from 'node:fs';

// The local stack without Docker: dynalite (DynamoDB) and fauxqs (S3, SNS,
// SQS) in this process, a real redis-server as a child process. Used by
// `make dev`, the tests and the benchmarks alike.

export type StackPorts = { aws: number; dynamodb: number; redis: number };

export type LocalStack = {
  ports: StackPorts;
  /** The variables a service process needs to reach this stack. */
  env: Record<string, string>;
  redis: RedisServer;
  /** dynalite's HTTP server (the benchmarks count the DynamoDB calls it answers). */
  dynamodbServer: Server;
  stop(): Promise<void>;
};

export const LOCAL_AWS_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_EC2_METADATA_DISABLED: 'true',
  S3_FORCE_PATH_STYLE: 'true',
};

export function stackEnv(ports: StackPorts): Record<string, string> {
  return {
    ...LOCAL_AWS_ENV,
    AWS_ENDPOINT_URL: `http://127.0.0.1:${ports.aws}`,
    AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${ports.dynamodb}`,
    REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`: a child process the caller is done with. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const REDIS_BINARIES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'];

export class RedisServer {
  readonly port: number;
  private child: ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
  }

  static binary(): string {
    const found = REDIS_BINARIES.find((path) => existsSync(path));
    if (!found) throw new Error('redis-server is not installed: run `apt-get update && apt-get install -y redis-server`');
    return found;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      RedisServer.binary(),
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await waitForPort(this.port, 5000);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  get running(): boolean {
    return this.child !== undefined;
  }
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Starts the three emulators; ports of 0 pick free ones. */
export async function startLocalStack(requested: Partial<StackPorts> = {}): Promise<LocalStack> {
  const { default: dynalite } = await import('dynalite');
  const { buildApp: buildFauxqs } = await import('fauxqs');

  const dynamoServer = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const dynamodb = await listen(dynamoServer, requested.dynamodb ?? 0);
  // fauxqs' startFauxqs() binds 0.0.0.0 whatever host it is given (its `host` only names the
  // queue URLs): anyone on the network could read and delete the local bucket. Its buildApp()
  // is the same server, not yet listening, so it listens here, on loopback only.
  const fauxqs = buildFauxqs({ logger: false, host: '127.0.0.1' });
  await fauxqs.listen({ port: requested.aws ?? 0, host: '127.0.0.1' });
  const redis = new RedisServer(requested.redis || (await freePort()));
  await redis.start();

  const ports = { aws: (fauxqs.server.address() as AddressInfo).port, dynamodb, redis: redis.port };
  return {
    ports,
    env: stackEnv(ports),
    redis,
    dynamodbServer: dynamoServer,
    async stop() {
      await Promise.allSettled([
        redis.stop(),
        fauxqs.close(),
        new Promise<void>((resolve) => {
          dynamoServer.closeAllConnections();
          dynamoServer.close(() => resolve());
        }),
      ]);
    },
  };
}
