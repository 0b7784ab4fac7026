import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

// A TCP proxy for fault injection, placed between the service and one
// dependency (Redis, the DynamoDB emulator, the SNS/SQS/S3 emulator). The
// test switches its mode at run time:
//
// - pass:       bytes flow both ways, untouched.
// - latency(ms): every chunk, both ways, is delivered `ms` later (order kept).
// - blackhole:  connections are accepted and read, but nothing is forwarded or
//               answered, and live connections stall in both directions. What
//               was read is held (TCP never loses bytes of a live stream) and
//               delivered in order if the proxy passes again, as when a
//               partition heals. That includes a peer's FIN: a client that
//               timed out and closed its socket still has its request
//               delivered later, as the kernel's retransmissions would (the
//               classic "failed" write that commits). A connection closed
//               outright (both ways, or reset) is dropped with what it held.
// - reset:      every live connection is destroyed with a TCP RST, and new
//               ones are reset as soon as they are accepted.
// - stallAfter(n): passes until n more bytes have gone back to the clients,
//               then blackholes: an answer that stops mid-body.
//
// Only 127.0.0.1. Every socket has an error listener: a fault is never an
// unhandled 'error' event in the test process.

export type FaultMode = { kind: 'pass' } | { kind: 'latency'; ms: number } | { kind: 'blackhole' } | { kind: 'reset' };

export type FaultProxyStats = {
  /** Connections accepted, in any mode. */
  accepted: number;
  /** Connections destroyed with an RST (reset mode). */
  reset: number;
  /** Bytes delivered client → target and target → client. */
  bytesUp: number;
  bytesDown: number;
};

type Item = { kind: 'data'; chunk: Buffer; due: number } | { kind: 'end'; due: number };

/** Holding more than this per direction stops reading (TCP back-pressure does the rest). */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/** One direction of one connection: what was read from `from` and not yet written to `to`. */
class Lane {
  readonly queue: Item[] = [];
  held = 0;
  timer: NodeJS.Timeout | undefined;
  /** The end of the stream was delivered. */
  ended = false;
  draining = false;
  readonly from: Socket;
  /** client → target */
  readonly up: boolean;
  constructor(from: Socket, up: boolean) {
    this.from = from;
    this.up = up;
  }
}

class Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  readonly lanes: { up: Lane; down: Lane | undefined };
  closed = false;
  /** The target dropped the connection while it was blackholed: a reset once traffic flows again. */
  upstreamLost = false;

  constructor(client: Socket) {
    this.client = client;
    this.lanes = { up: new Lane(client, true), down: undefined };
  }
}

export class FaultProxy {
  readonly port: number;
  readonly target: { host: string; port: number };
  readonly stats: FaultProxyStats = { accepted: 0, reset: 0, bytesUp: 0, bytesDown: 0 };
  private current: FaultMode = { kind: 'pass' };
  /** bytesDown at which stallAfter() turns into a blackhole. */
  private stallAt = Number.POSITIVE_INFINITY;
  private readonly server: Server;
  private readonly links = new Set<Link>();

  private constructor(server: Server, target: { host: string; port: number }) {
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.target = target;
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on a free 127.0.0.1 port, forwarding to `target` (a port, `host:port` or a URL). */
  static async start(target: number | string | URL): Promise<FaultProxy> {
    const parsed = FaultProxy.parseTarget(target);
    if (parsed.host !== '127.0.0.1' && parsed.host !== 'localhost') throw new Error(`fault proxy targets 127.0.0.1 only, not ${parsed.host}`);
    // Half-open allowed: a peer's FIN is forwarded as a FIN, not turned into a close of both ways.
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    server.on('error', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new FaultProxy(server, { host: '127.0.0.1', port: parsed.port });
  }

  private static parseTarget(target: number | string | URL): { host: string; port: number } {
    if (typeof target === 'number') return { host: '127.0.0.1', port: target };
    const url = target instanceof URL ? target : new URL(/^[a-z]+:\/\//.test(target) ? target : `tcp://${target}`);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return { host: url.hostname, port };
  }

  /** `scheme://127.0.0.1:<proxy port>`: what to give the service instead of the target's address. */
  url(scheme: 'http' | 'redis' = 'http'): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  get mode(): FaultMode {
    return this.current;
  }

  /** Live connections through the proxy. */
  get connections(): number {
    return this.links.size;
  }

  pass(): void {
    this.setMode({ kind: 'pass' });
  }

  latency(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('latency must be >= 0 ms');
    this.setMode({ kind: 'latency', ms });
  }

  blackhole(): void {
    this.setMode({ kind: 'blackhole' });
  }

  /** Passes, then blackholes once `bytes` more bytes have been delivered target → client. */
  stallAfter(bytes: number): void {
    this.stallAt = this.stats.bytesDown + bytes;
    this.setMode({ kind: 'pass' });
  }

  reset(): void {
    this.setMode({ kind: 'reset' });
  }

  setMode(mode: FaultMode): void {
    this.current = mode;
    if (mode.kind !== 'pass') this.stallAt = Number.POSITIVE_INFINITY;
    if (mode.kind === 'reset') {
      for (const link of [...this.links]) this.resetLink(link);
      return;
    }
    if (mode.kind === 'blackhole') return; // lanes stop pumping by themselves
    for (const link of [...this.links]) {
      if (link.upstreamLost) {
        this.resetLink(link);
        continue;
      }
      if (!link.upstream) this.connectUpstream(link);
      this.pump(link, link.lanes.up);
      if (link.lanes.down) this.pump(link, link.lanes.down);
    }
  }

  async close(): Promise<void> {
    for (const link of [...this.links]) this.destroyLink(link);
    if (!this.server.listening) return;
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
  }

  private accept(client: Socket): void {
    this.stats.accepted += 1;
    client.on('error', () => {});
    if (this.current.kind === 'reset') {
      this.stats.reset += 1;
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const link = new Link(client);
    this.links.add(link);
    this.read(link, link.lanes.up);
    client.on('close', () => this.destroyLink(link));
    // In a blackhole the target is not even contacted: the connection hangs after its handshake.
    if (this.current.kind !== 'blackhole') this.connectUpstream(link);
  }

  private connectUpstream(link: Link): void {
    if (link.upstream || link.closed) return;
    const upstream = createConnection({ host: this.target.host, port: this.target.port, noDelay: true, allowHalfOpen: true });
    link.upstream = upstream;
    upstream.on('error', () => {});
    // A target that refuses or drops us is a reset the client sees.
    upstream.on('close', () => {
      if (link.closed) return;
      const down = link.lanes.down;
      if (down && down.ended && down.queue.length === 0) return; // clean end already delivered
      if (this.current.kind === 'blackhole') {
        link.upstreamLost = true; // stalled: the client learns nothing yet
        return;
      }
      this.resetLink(link);
    });
    upstream.once('connect', () => {
      link.lanes.down = new Lane(upstream, false);
      this.read(link, link.lanes.down);
      this.pump(link, link.lanes.up);
    });
  }

  private read(link: Link, lane: Lane): void {
    lane.from.on('data', (chunk: Buffer) => {
      const mode = this.current;
      lane.queue.push({ kind: 'data', chunk, due: mode.kind === 'latency' ? Date.now() + mode.ms : 0 });
      lane.held += chunk.length;
      if (lane.held > MAX_HELD_BYTES) lane.from.pause();
      this.pump(link, lane);
    });
    lane.from.on('end', () => {
      const mode = this.current;
      lane.queue.push({ kind: 'end', due: mode.kind === 'latency' ? Date.now() + mode.ms : 0 });
      this.pump(link, lane);
    });
  }

  /** Delivers what a lane holds, as far as the mode allows. */
  private pump(link: Link, lane: Lane): void {
    if (link.closed) return;
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const mode = this.current;
    if (mode.kind === 'blackhole' || mode.kind === 'reset') return;
    const to = lane.up ? link.upstream : link.client;
    if (!to || (lane.up && !link.lanes.down)) return; // upstream not connected yet
    const now = Date.now();
    while (lane.queue.length > 0) {
      const item = lane.queue[0]!;
      if (mode.kind === 'latency' && item.due > now) {
        lane.timer = setTimeout(() => this.pump(link, lane), item.due - now);
        return;
      }
      lane.queue.shift();
      if (item.kind === 'end') {
        lane.ended = true;
        to.end();
        continue;
      }
      let chunk = item.chunk;
      if (!lane.up && this.stats.bytesDown + chunk.length > this.stallAt) {
        // Deliver up to the stall point, hold the rest, and blackhole from here on.
        const cut = Math.max(0, this.stallAt - this.stats.bytesDown);
        lane.queue.unshift({ kind: 'data', chunk: chunk.subarray(cut), due: item.due });
        chunk = chunk.subarray(0, cut);
        lane.held -= chunk.length;
        this.stats.bytesDown += chunk.length;
        if (chunk.length > 0) to.write(chunk);
        this.blackhole();
        return;
      }
      lane.held -= chunk.length;
      if (lane.up) this.stats.bytesUp += chunk.length;
      else this.stats.bytesDown += chunk.length;
      if (!to.write(chunk) && !lane.draining) {
        lane.draining = true;
        lane.from.pause();
        to.once('drain', () => {
          lane.draining = false;
          if (lane.held <= MAX_HELD_BYTES) lane.from.resume();
        });
      }
    }
    if (!lane.draining && lane.held <= MAX_HELD_BYTES && lane.from.isPaused()) lane.from.resume();
  }

  private resetLink(link: Link): void {
    if (link.closed) return;
    this.stats.reset += 1;
    this.forget(link);
    if (!link.client.destroyed) link.client.resetAndDestroy();
    if (link.upstream && !link.upstream.destroyed) {
      if (link.upstream.connecting) link.upstream.destroy();
      else link.upstream.resetAndDestroy();
    }
  }

  private destroyLink(link: Link): void {
    if (link.closed) return;
    this.forget(link);
    link.client.destroy();
    link.upstream?.destroy();
  }

  private forget(link: Link): void {
    link.closed = true;
    this.links.delete(link);
    clearTimeout(link.lanes.up.timer);
    if (link.lanes.down) clearTimeout(link.lanes.down.timer);
  }
}
