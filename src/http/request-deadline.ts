import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Bodies of this route may take one more second per this many bytes received (document uploads). */
    bodyBytesPerSecond?: number;
  }
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Passes a request body through until its deadline, then fails it with a
 * 408. The deadline is fixed, or, for routes that take large bodies, grows
 * with the bytes received: a slow trickle is cut off, a large upload at a
 * decent rate is not. It ends only the body, not the connection, so that
 * the 408 can still be answered on it.
 */
class BodyDeadline extends Transform {
  private received = 0;
  private timer: NodeJS.Timeout;
  private readonly startedAt = performance.now();
  private readonly baseMs: number;
  private readonly bytesPerSecond: number | undefined;

  constructor(source: Readable, baseMs: number, bytesPerSecond: number | undefined) {
    super();
    this.baseMs = baseMs;
    this.bytesPerSecond = bytesPerSecond;
    this.timer = setTimeout(() => this.check(source), baseMs);
    // A body nobody reads any more (the request was answered first) fails quietly:
    // an 'error' without a listener would end the process.
    this.on('error', () => {});
    source.pipe(this);
    finished(source, (error) => {
      clearTimeout(this.timer);
      if (error && !this.destroyed) this.destroy(error);
    });
  }

  /** The request was answered: its body's deadline no longer matters. */
  stop() {
    clearTimeout(this.timer);
  }

  private deadline(): number {
    return this.startedAt + this.baseMs + (this.bytesPerSecond ? (this.received / this.bytesPerSecond) * 1000 : 0);
  }

  private check(source: Readable) {
    const left = this.deadline() - performance.now();
    if (left > 0) {
      this.timer = setTimeout(() => this.check(source), left);
      return;
    }
    source.unpipe(this);
    source.pause();
    this.destroy(new Errors.RequestTimeout());
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.received += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback) {
    clearTimeout(this.timer);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void) {
    clearTimeout(this.timer);
    callback(error);
  }
}

/**
 * A whole request within `timeoutMs`: Node's own check takes the head (a
 * third of it, see serverOptions), this plugin the body (the rest). And a
 * request answered before its body was read (a 401, a 413 on its
 * Content-Length, a 409) has its connection closed after the answer, rather
 * than read to its end or left open for the client's next byte.
 */
export const requestDeadlinePlugin = fp(
  async (app, options: { bodyTimeoutMs: number }) => {
    app.addHook('preParsing', (request, reply, payload, done) => {
      if (!hasBody(request)) return done(null, payload);
      const deadline = new BodyDeadline(payload, options.bodyTimeoutMs, request.routeOptions.config.bodyBytesPerSecond);
      reply.raw.once('close', () => deadline.stop());
      done(null, deadline);
    });
    app.addHook('onSend', (request, reply, payload, done) => {
      if (!request.raw.complete && hasBody(request)) reply.header('connection', 'close');
      done(null, payload);
    });
  },
  { name: 'request-deadline', fastify: '5.x' },
);

/** The part of REQUEST_TIMEOUT_MS the head of a request gets (Node's headersTimeout); the body gets the rest. */
export function headTimeoutOf(requestTimeoutMs: number): number {
  return Math.floor(requestTimeoutMs / 3);
}
