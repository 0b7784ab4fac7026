import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

// The local stack of `make dev` on a developer's laptop must not be reachable
// from the network: the emulators hold whatever the developer stored, with no
// authentication (fauxqs' startFauxqs() binds 0.0.0.0 whatever it is told).
// startLocalStack(), as make dev calls it, runs in a process of its own, and
// every TCP socket listening in its process tree (dynalite and fauxqs in it,
// redis-server as its child) must be bound to loopback. Read from /proc, so it
// needs nothing installed.

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

const STACK = new URL('../../src/local/emulators.ts', import.meta.url).pathname;

/** A process that starts the stack as make dev does and prints its ports; `alsoListen` adds a listener of its own. */
function stackProcess(alsoListen?: string): ChildProcess {
  const script = [
    `const { startLocalStack } = await import(${JSON.stringify(STACK)});`,
    'const stack = await startLocalStack();',
    alsoListen ? `(await import('node:net')).createServer().listen(0, ${JSON.stringify(alsoListen)});` : '',
    "process.on('SIGTERM', async () => { await stack.stop(); process.exit(0); });",
    'console.log(JSON.stringify(stack.ports));',
  ].join('\n');
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

const started: ChildProcess[] = [];

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode !== null) continue;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
});

/** Starts a stack process and returns what its tree listens on once its three ports are up. */
async function listening(alsoListen?: string): Promise<{ ports: number[]; found: Listener[] }> {
  const child = stackProcess(alsoListen);
  started.push(child);
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const ports = Object.values(JSON.parse(String(line)) as Record<string, number>);
  const up = (found: Listener[]) =>
    ports.every((port) => found.some((listener) => listener.port === port)) && (!alsoListen || found.length > ports.length);
  const deadline = Date.now() + 10_000;
  let found = listeners(child.pid!);
  while (!up(found) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    found = listeners(child.pid!);
  }
  return { ports, found };
}

describe("make dev's local stack", () => {
  it('listens on loopback only: the DynamoDB emulator, the S3/SNS/SQS emulator and Redis', async () => {
    const { ports, found } = await listening();
    const summary = found.map((listener) => `${listener.address}:${listener.port} (pid ${listener.pid})`).join(', ');
    expect(ports).toHaveLength(3);
    for (const port of ports) expect(found.some((listener) => listener.port === port), `nothing listens on ${port}: ${summary}`).toBe(true);
    // Not only those ports: nothing in the tree listens beyond loopback.
    for (const listener of found) expect(isLoopback(listener.address), summary).toBe(true);
  });

  it('would see a listener on every interface (the check is not blind)', async () => {
    const { found } = await listening('0.0.0.0');
    expect(found.some((listener) => !isLoopback(listener.address))).toBe(true);
  });
});
