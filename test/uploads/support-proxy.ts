import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as tus from 'tus-js-client';
import { ownTenant } from '../documents/support.ts';
import { ready, startProcess, type RunningProcess } from '../support/processes.ts';

// A small TCP proxy for the resumable-upload tests, between an HTTP client
// and one or more API processes (127.0.0.1 only):
//
// - counts the bytes read from clients (client → API) and sent back;
// - spreads new connections over its targets in turn (round robin); a
//   target that refuses the connection (its process is dead) is skipped for
//   the next, as a load balancer's failover would;
// - `cut()` destroys every live connection at once: the client's side is
//   reset (its write fails, as when a network path dies), the API's side is
//   ended after what was already forwarded, which is what an API sees when
//   its client's connection drops (the bytes that reached it, then the end);
//   new connections pass as before;
// - an API that closes a connection has it closed towards the client after
//   what it answered, and a client still sending on it gets a reset, as
//   from the API's own closed socket;
// - `whenUp(bytes, fn)` runs fn synchronously, once, in the data handler
//   that takes the bytes read from clients to `bytes` or more: a fault
//   placed by bytes, not by the clock (fn may cut, or kill an instance).
//
// Every socket has an error listener: a fault is never an unhandled 'error'.

export type ProxyStats = {
  /** Connections accepted. */
  accepted: number;
  /** Connections that went to each target, by port. */
  perTarget: Map<number, number>;
  /** Bytes read from clients (sent by them through the proxy) and written back to them. */
  bytesUp: number;
  bytesDown: number;
  /** Live connections destroyed by cut(). */
  cutConnections: number;
};

type Link = { client: Socket; upstream: Socket | undefined; pending: Buffer[]; closed: boolean };

export class UploadProxy {
  readonly port: number;
  readonly stats: ProxyStats = { accepted: 0, perTarget: new Map(), bytesUp: 0, bytesDown: 0, cutConnections: 0 };
  private readonly server: Server;
  private readonly targets: number[];
  private next = 0;
  private readonly links = new Set<Link>();
  /** Every socket still open, both sides: close() destroys them all. */
  private readonly sockets = new Set<Socket>();
  private readonly triggers: { at: number; fn: () => void }[] = [];

  private constructor(server: Server, targets: number[]) {
    this.server = server;
    this.targets = targets;
    this.port = (server.address() as AddressInfo).port;
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on a free 127.0.0.1 port, forwarding each new connection to the next of `targets` (API ports on 127.0.0.1). */
  static async start(targets: number[]): Promise<UploadProxy> {
    if (targets.length === 0) throw new Error('a proxy needs a target');
    const server = createServer({ noDelay: true });
    server.on('error', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new UploadProxy(server, targets);
  }

  url(path = ''): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  get connections(): number {
    return this.links.size;
  }

  /** Runs `fn` once the bytes read from clients reach `bytes` (at once if they already have). */
  whenUp(bytes: number, fn: () => void): void {
    if (this.stats.bytesUp >= bytes) fn();
    else this.triggers.push({ at: bytes, fn });
  }

  /** Destroys every live connection: the client's side reset, the API's side ended after what was forwarded. Returns how many. */
  cut(): number {
    let count = 0;
    for (const link of [...this.links]) {
      count += 1;
      this.drop(link, 'cut');
    }
    this.stats.cutConnections += count;
    return count;
  }

  async close(): Promise<void> {
    for (const link of [...this.links]) this.drop(link, 'destroy');
    for (const socket of this.sockets) socket.destroy();
    if (!this.server.listening) return;
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
  }

  private accept(client: Socket): void {
    this.stats.accepted += 1;
    this.track(client);
    client.setNoDelay(true);
    const link: Link = { client, upstream: undefined, pending: [], closed: false };
    this.links.add(link);
    client.on('data', (chunk: Buffer) => {
      // Counted even when no longer forwarded (the API closed first): the client sent them.
      this.stats.bytesUp += chunk.length;
      this.fire();
      if (link.closed) {
        // Bytes for an API that closed its side: refused with a reset, as by a closed socket.
        if (!client.destroyed) client.resetAndDestroy();
        return;
      }
      if (link.upstream && !link.upstream.connecting) {
        if (!link.upstream.write(chunk)) {
          client.pause();
          link.upstream.once('drain', () => client.resume());
        }
      } else {
        link.pending.push(chunk);
        client.pause();
      }
    });
    client.on('end', () => link.upstream?.end());
    client.on('close', () => this.drop(link, 'destroy'));
    this.connect(link, this.next++ % this.targets.length, this.targets.length);
  }

  /** Connects to targets[index], or the ones after it when refused (`left` tries in all). */
  private connect(link: Link, index: number, left: number): void {
    if (link.closed) return;
    if (left === 0) return this.drop(link, 'destroy');
    const port = this.targets[index]!;
    const upstream = createConnection({ host: '127.0.0.1', port, noDelay: true });
    link.upstream = upstream;
    let connected = false;
    this.track(upstream);
    upstream.once('connect', () => {
      connected = true;
      this.stats.perTarget.set(port, (this.stats.perTarget.get(port) ?? 0) + 1);
      for (const chunk of link.pending.splice(0)) upstream.write(chunk);
      link.client.resume();
      upstream.on('data', (chunk: Buffer) => {
        if (link.closed) return;
        this.stats.bytesDown += chunk.length;
        if (!link.client.write(chunk)) {
          upstream.pause();
          link.client.once('drain', () => upstream.resume());
        }
      });
      upstream.on('end', () => link.client.end());
    });
    upstream.once('close', () => {
      if (!connected && !link.closed) return this.connect(link, (index + 1) % this.targets.length, left - 1);
      // The API closed the connection: so does the client's side, after what came back. As the API's own
      // kernel would, a client still sending on it gets a reset (see accept).
      if (!link.closed) {
        link.closed = true;
        this.links.delete(link);
        link.client.resume();
        link.client.end();
      }
    });
  }

  private drop(link: Link, how: 'cut' | 'destroy'): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    if (how === 'cut') {
      link.client.resetAndDestroy();
      // What was forwarded reaches the API, then the end of the stream (and the socket goes once the API closes it, or at once if unconnected).
      const upstream = link.upstream;
      if (upstream && !upstream.connecting) upstream.end();
      else upstream?.destroy();
    } else {
      link.client.destroy();
      link.upstream?.destroy();
    }
  }

  private fire(): void {
    for (let i = 0; i < this.triggers.length; ) {
      const trigger = this.triggers[i]!;
      if (this.stats.bytesUp >= trigger.at) {
        this.triggers.splice(i, 1);
        trigger.fn();
      } else i += 1;
    }
  }
}

// ---------------------------------------------------------------------------
// What the three upload process tests share besides the proxy: an API
// process of a tenant of the test's own, tus-js-client with a log of its
// requests, and the document an upload made.

/** S3_PART_SIZE_BYTES, as the API processes of these tests run (its default). */
export const PART = 5 * 1024 * 1024;

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export type Tenant = ReturnType<typeof ownTenant>;

export function tenantOf(prefix: string): Tenant {
  return ownTenant(prefix);
}

/**
 * `node src/processes/api.ts` on the shared local stack, for `tenant`, listening on
 * a free port of its own; resolves once ready. Load shedding on event-loop
 * lag is off: a process just started on a loaded machine lags, and an
 * OVERLOADED 503 is not what these tests look at.
 */
export async function startApi(tenant: Tenant, env: Record<string, string> = {}): Promise<RunningProcess> {
  const api = await startProcess('api', {
    ...Object.fromEntries(Object.entries(tenant.config).map(([name, value]) => [name, String(value)])),
    LOG_LEVEL: 'warn',
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    AWS_REQUEST_TIMEOUT_MS: '5000',
    ...env,
  });
  try {
    await ready(api, 30_000);
  } catch (error) {
    api.child.kill('SIGKILL');
    throw error;
  }
  return api;
}

/** SIGKILL, and wait for the exit. */
export async function killApi(api: RunningProcess): Promise<void> {
  if (api.child.exitCode !== null || api.child.signalCode !== null) return;
  const exited = once(api.child, 'exit');
  api.child.kill('SIGKILL');
  await exited;
}

export type Logged = { method: string; offset: number | undefined; status?: number; answerOffset?: number; error?: string };

export type TusProtocol = 'tus-v1' | 'ietf-draft-05';

/** Draft -05 of the IETF protocol (interop version 6) or tus 1.0, as tus-js-client sends it: the header a request speaks by. */
export function protocolHeaders(protocol: TusProtocol): Record<string, string> {
  return protocol === 'tus-v1' ? { 'tus-resumable': '1.0.0' } : { 'upload-draft-interop-version': '6' };
}

/**
 * One upload by tus-js-client, and every request it made, in order, with
 * the offset it sent and the answer's status and Upload-Offset (a request
 * with no answer has an error instead). Rejects with the client's error.
 */
export function tusUpload(
  data: Buffer,
  options: { endpoint: string; protocol: TusProtocol; tenant: Tenant; chunkSize?: number; retryDelays?: number[] },
): { done: Promise<{ url: string }>; log: Logged[]; upload: tus.Upload } {
  const log: Logged[] = [];
  const pending = new Map<unknown, Logged>();
  let upload!: tus.Upload;
  const done = new Promise<{ url: string }>((resolve, reject) => {
    // `protocol` is an option of tus-js-client 4 its type declarations leave out.
    const settings: tus.UploadOptions & { protocol: TusProtocol } = {
      endpoint: options.endpoint,
      protocol: options.protocol,
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      retryDelays: options.retryDelays ?? [0, 50, 100, 200, 500, 1000, 1000, 1000, 1000, 1000],
      headers: options.tenant.headers,
      metadata: { filetype: 'application/octet-stream' },
      onBeforeRequest: (req) => {
        const offset = req.getHeader('Upload-Offset');
        const entry: Logged = { method: req.getMethod(), offset: offset === undefined ? undefined : Number(offset) };
        log.push(entry);
        pending.set(req, entry);
      },
      onAfterResponse: (req, res) => {
        const entry = pending.get(req);
        if (!entry) return;
        entry.status = res.getStatus();
        const offset = res.getHeader('Upload-Offset');
        if (offset !== undefined) entry.answerOffset = Number(offset);
      },
      onShouldRetry: (error) => {
        const detailed = error as tus.DetailedError;
        const entry = pending.get(detailed.originalRequest);
        if (entry && entry.status === undefined) entry.error = detailed.message.split('\n')[0]?.slice(0, 200);
        const status = detailed.originalResponse?.getStatus() ?? 0;
        return status === 0 || status >= 500 || status === 409 || status === 423;
      },
      onSuccess: () => resolve({ url: upload.url! }),
      onError: reject,
    };
    upload = new tus.Upload(data, settings);
  });
  upload.start();
  return { done, log, upload };
}

/** HEAD of an upload (at `base`, e.g. another instance), in `protocol`: its status and headers. */
export async function headUpload(base: string, uploadPath: string, tenant: Tenant, protocol: TusProtocol = 'tus-v1') {
  const response = await fetch(`${base}${uploadPath}`, { method: 'HEAD', headers: { ...tenant.headers, ...protocolHeaders(protocol) } });
  return { status: response.status, offset: Number(response.headers.get('upload-offset') ?? NaN), headers: response.headers };
}

/** The document a completed upload made (its Content-Location, read at `base`): its bytes. */
export async function documentOf(base: string, uploadPath: string, tenant: Tenant, protocol: TusProtocol = 'tus-v1'): Promise<Buffer> {
  const head = await headUpload(base, uploadPath, tenant, protocol);
  if (head.status >= 300) throw new Error(`HEAD ${uploadPath}: ${head.status}`);
  const location = head.headers.get('content-location');
  if (!location) throw new Error(`HEAD ${uploadPath}: no Content-Location`);
  const response = await fetch(`${base}${location}`, { headers: tenant.headers });
  if (response.status !== 200) throw new Error(`GET ${location}: ${response.status} ${await response.text()}`);
  return Buffer.from(await response.arrayBuffer());
}

/** A new upload (no body yet) of `length` bytes, created at `port` in `protocol`: its path, /uploads/{id}. */
export async function createUpload(port: number, tenant: Tenant, length: number, protocol: TusProtocol = 'tus-v1'): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/documents`, {
    method: 'POST',
    headers: {
      ...tenant.headers,
      ...protocolHeaders(protocol),
      'upload-length': String(length),
      ...(protocol === 'tus-v1' ? {} : { 'upload-complete': '?0' }),
    },
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`creation: ${response.status} ${text}`);
  return response.headers.get('location')!;
}

export type Answer = { status: number; headers: IncomingMessage['headers']; body: string };

/**
 * The answer to a raw request; rejects if the connection ends without a
 * whole one. An answer whose last byte came is the answer, whatever the
 * connection does next (a reset that follows it, a write of the body that
 * fails after it).
 */
export function answerOf(req: ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    req.on('error', (error) => answered || reject(error));
    req.once('close', () => answered || reject(new Error('closed without an answer')));
    req.once('response', (res) => {
      answered = true;
      let body = '';
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.once('end', done);
      res.on('error', (error) => (res.complete ? done() : reject(error)));
      res.once('close', () => (res.complete ? done() : reject(new Error('the answer was cut short'))));
    });
  });
}

/**
 * A raw PATCH (own connection) at `offset` whose body, declared `length`
 * bytes, the caller writes; IETF: Upload-Complete ?1 when the body ends
 * the upload (`complete`).
 */
export function openPatch(
  port: number,
  tenant: Tenant,
  uploadPath: string,
  options: { offset: number; length: number; protocol?: TusProtocol; complete?: boolean },
): ClientRequest {
  const protocol = options.protocol ?? 'tus-v1';
  const req = request({
    host: '127.0.0.1',
    port,
    path: uploadPath,
    method: 'PATCH',
    agent: false,
    headers: {
      ...tenant.headers,
      ...protocolHeaders(protocol),
      'upload-offset': String(options.offset),
      'content-type': protocol === 'tus-v1' ? 'application/offset+octet-stream' : 'application/partial-upload',
      'content-length': String(options.length),
      ...(protocol === 'tus-v1' ? {} : { 'upload-complete': options.complete === false ? '?0' : '?1' }),
    },
  });
  req.on('error', () => {}); // a killed instance is a reset here; answerOf says so to whoever waits for the answer
  return req;
}

/** Writes a piece of a body, and waits for room for the next one (or for the request's end). */
export async function writePiece(req: ClientRequest, chunk: Buffer): Promise<void> {
  if (req.destroyed || req.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const go = () => {
      req.off('drain', go);
      req.off('close', go);
      resolve();
    };
    req.on('drain', go);
    req.on('close', go);
  });
}
