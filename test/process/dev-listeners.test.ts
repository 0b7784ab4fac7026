import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { freePort } from '../../src/local/emulators.ts';

// `make dev` on a developer's laptop must not be reachable from the network:
// the emulators hold whatever the developer stored, with no authentication.
// The whole of it runs here (`node src/local/dev.ts`, on free ports), and
// every TCP socket listening in its process tree (dev.ts with dynalite and
// fauxqs in-process, redis-server, the API, the relay, the consumer) must be
// bound to loopback. Read from /proc, so it needs nothing installed.

type Listener = { pid: number; address: string; port: number };

/** The process and all its descendants, from the parent pid of every /proc/<pid>/stat. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(target);
        if (match) inodes.add(match[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // the process ended
  }
  return inodes;
}

/** /proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) byte order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((word) => Buffer.from(word, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return [...bytes].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function listeners(root: number): Listener[] {
  const owner = new Map<string, number>();
  for (const pid of processTree(root)) for (const inode of socketInodes(pid)) owner.set(inode, pid);
  const found: Listener[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A: LISTEN
      const pid = owner.get(fields[9]!);
      if (pid === undefined) continue;
      const [address, port] = fields[1]!.split(':') as [string, string];
      found.push({ pid, address: decodeAddress(address), port: Number.parseInt(port, 16) });
    }
  }
  return found;
}

const isLoopback = (address: string) => address.startsWith('127.') || address === '::1' || /^::ffff:7f/.test(address);

let dev: ChildProcess | undefined;
let output = '';

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = once(dev, 'exit');
    dev.kill('SIGTERM');
    await exited;
  }
});

describe('make dev', () => {
  it('listens on loopback only: the emulators, Redis, the API, the relay and the consumer', { timeout: 60_000 }, async () => {
    const ports = {
      PORT: await freePort(),
      AWS_EMULATOR_PORT: await freePort(),
      DYNAMODB_EMULATOR_PORT: await freePort(),
      REDIS_PORT: await freePort(),
      RELAY_METRICS_PORT: await freePort(),
      CONSUMER_METRICS_PORT: await freePort(),
    };
    const env: Record<string, string | undefined> = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
    delete env.HOST; // what a developer gets without setting anything
    dev = spawn(process.execPath, [new URL('../../src/local/dev.ts', import.meta.url).pathname], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    dev.stdout!.on('data', (chunk) => (output += chunk));
    dev.stderr!.on('data', (chunk) => (output += chunk));

    // Everything is up once each of the six ports listens (the relay and the consumer start after the API).
    const wanted = new Set(Object.values(ports));
    const deadline = Date.now() + 45_000;
    let found: Listener[] = [];
    while (Date.now() < deadline) {
      if (dev.exitCode !== null) throw new Error(`make dev exited:\n${output}`);
      found = listeners(dev.pid!);
      if ([...wanted].every((port) => found.some((listener) => listener.port === port))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const summary = found.map((listener) => `${listener.address}:${listener.port} (pid ${listener.pid})`).join(', ');
    for (const port of wanted) expect(found.some((listener) => listener.port === port), `nothing listens on ${port}: ${summary}\n${output}`).toBe(true);
    // Not only the six ports: nothing else in the tree listens beyond loopback either.
    for (const listener of found) expect(isLoopback(listener.address), `${summary}`).toBe(true);
    expect((await fetch(`http://127.0.0.1:${ports.PORT}/health/ready`)).status).toBe(200);
  });
});
