import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { parseExposition, until, type RunningProcess } from '../support/processes.ts';
import {
  answerOf,
  createUpload,
  documentOf,
  headUpload,
  killApi,
  openPatch,
  PART,
  sha256,
  startApi,
  tenantOf,
  writePiece,
  type Answer,
  type Tenant,
  type TusProtocol,
} from './support-proxy.ts';

// SIGTERM to an API process (A) with ten resumable uploads in flight (raw
// streamed PATCHes, tus and IETF), their bodies still arriving: A stops
// reading them, stores what arrived, answers each 503 SHUTTING_DOWN with the
// Upload-Offset it stored, and exits 0 by itself (before its
// SHUTDOWN_TIMEOUT_MS, past which it would exit 1). Every upload then
// resumes on a second process (B) from the offset stored, which B's HEAD
// gives and which is the one A answered, and finishes byte-exact.
//
// Half the clients stop sending at the SIGTERM and must each get A's answer;
// the other half go on sending until answered, as tus-js-client would. A
// closes a connection whose body it no longer reads right after answering
// (src/http/request-deadline.ts), so such a client's next write can meet the
// reset before it read the answer: for those, an answer is checked when it
// arrived, and a connection error is the only other outcome allowed.

const COUNT = 10;
/** Sent at once: a part and a bit, so that A stores a part while the rest trickles in. */
const FIRST = PART + 1024 * 1024;
const TRICKLE = 16 * 1024;

let tenant: Tenant;
let a: RunningProcess;
let b: RunningProcess;

const env = {
  MAX_CONCURRENT_UPLOADS: '32',
  MAX_CONCURRENT_UPLOADS_PER_TENANT: '32',
  SHUTDOWN_TIMEOUT_MS: '10000',
};

beforeAll(async () => {
  tenant = tenantOf('drain');
  // A logs at info: its "shut down cleanly" line is part of what is checked.
  [a, b] = await Promise.all([startApi(tenant, { ...env, LOG_LEVEL: 'info' }), startApi(tenant, env)]);
});

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((api) => killApi(api)));
});

async function uploadsInFlight(api: RunningProcess): Promise<number> {
  const response = await fetch(api.url('/metrics'));
  return parseExposition(await response.text()).get('document_uploads_in_flight') ?? NaN;
}

type InFlight = {
  protocol: TusProtocol;
  /** Goes on sending its body after the SIGTERM, until A answers or closes (else it stops sending then). */
  noisy: boolean;
  data: Buffer;
  path: string;
  sent: number;
  /** A's answer, or why there was none. */
  answer: Promise<Answer | Error>;
  /** Set once A answered or the connection ended: the trickle stops. */
  ended: boolean;
  trickle: Promise<void>;
};

let signalled = false;

describe('SIGTERM with ten resumable uploads in flight', () => {
  it('A answers each 503 SHUTTING_DOWN with the offset it stored, exits 0 by itself, and every upload finishes on B byte-exact', { timeout: 90_000 }, async () => {
    const uploads: InFlight[] = await Promise.all(
      Array.from({ length: COUNT }, async (_, i) => {
        const protocol: TusProtocol = i % 2 === 0 ? 'tus-v1' : 'ietf-draft-05';
        // More than two parts: the first part is sent (and recorded) while the rest still arrives.
        const data = randomBytes(12 * 1024 * 1024 + 4099 * i + 1);
        const path = await createUpload(a.port, tenant, data.length, protocol);
        const req = openPatch(a.port, tenant, path, { offset: 0, length: data.length, protocol });
        const answer = answerOf(req).catch((error: Error) => error);
        const upload: InFlight = { protocol, noisy: i < COUNT / 2, data, path, sent: 0, answer, ended: false, trickle: Promise.resolve() };
        void answer.then(() => (upload.ended = true));
        // A part and a bit at once, then a trickle until A answers (never the whole body).
        upload.trickle = (async () => {
          await writePiece(req, data.subarray(0, FIRST));
          upload.sent = FIRST;
          while (!upload.ended && !req.destroyed && upload.sent + TRICKLE < data.length && (upload.noisy || !signalled)) {
            await writePiece(req, data.subarray(upload.sent, upload.sent + TRICKLE));
            upload.sent += TRICKLE;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          await answer;
          req.destroy();
        })();
        return upload;
      }),
    );

    // All ten in flight on A (each holds an upload slot), each with a part stored (B sees it).
    await until(async () => (await uploadsInFlight(a)) === COUNT, 30_000, () => `${COUNT} uploads in flight on A`);
    const before = await Promise.all(
      uploads.map((upload) =>
        until(
          async () => {
            const head = await headUpload(b.url(''), upload.path, tenant, upload.protocol);
            return head.offset >= PART ? head.offset : undefined;
          },
          30_000,
          () => `a part of ${upload.path} stored`,
        ),
      ),
    );
    expect(await uploadsInFlight(a)).toBe(COUNT);
    expect(uploads.every((upload) => !upload.ended)).toBe(true);

    const exited = once(a.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    signalled = true;
    a.child.kill('SIGTERM');

    // Every answer A gave during the drain: 503 SHUTTING_DOWN, with the offset it stored. An upload that stopped
    // sending gets its answer; one still sending may find the connection reset before it read the answer
    // (A closes a connection whose body it no longer reads, and the client's next write meets the reset).
    const answers = await Promise.all(uploads.map((upload) => upload.answer));
    await Promise.all(uploads.map((upload) => upload.trickle));
    const offsets = answers.map((answer, i) => {
      const upload = uploads[i]!;
      if (answer instanceof Error) {
        expect(upload.noisy, `upload ${i} got no answer: ${answer.message}`).toBe(true);
        expect(answer.message).toMatch(/EPIPE|ECONNRESET|closed without an answer/);
        return undefined;
      }
      expect(answer.status, answer.body).toBe(503);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'SHUTTING_DOWN' });
      expect(answer.headers['upload-offset'], `answer ${i}: ${JSON.stringify(answer.headers)}`).toMatch(/^\d+$/);
      if (upload.protocol === 'tus-v1') expect(answer.headers['tus-resumable']).toBe('1.0.0');
      return Number(answer.headers['upload-offset']);
    });

    // A exits by itself, 0: within its SHUTDOWN_TIMEOUT_MS (past it, close-with-grace exits 1).
    const [code, signal] = await exited;
    expect({ code, signal }, a.output().slice(-4000)).toEqual({ code: 0, signal: null });
    expect(a.output()).toContain('shut down cleanly');

    // What A said it stored is what is stored: B's HEAD agrees, no less than before the drain, no more than was sent.
    const stored: number[] = [];
    for (const [i, upload] of uploads.entries()) {
      const head = await headUpload(b.url(''), upload.path, tenant, upload.protocol);
      if (offsets[i] !== undefined) expect(head.offset, upload.path).toBe(offsets[i]);
      expect(head.offset).toBeGreaterThanOrEqual(before[i]!);
      expect(head.offset).toBeLessThanOrEqual(upload.sent);
      stored.push(head.offset);
    }
    console.log(
      `[uploads] drain: sent ${JSON.stringify(uploads.map((upload) => upload.sent))}, stored before SIGTERM ${JSON.stringify(before)}, ` +
        `A answered ${JSON.stringify(offsets.map((offset) => offset ?? 'lost'))}, stored ${JSON.stringify(stored)}`,
    );
    // The drain stored what arrived past the last part (as a tail), not only whole parts.
    expect(stored.some((offset) => offset % PART !== 0)).toBe(true);

    // Every upload resumes on B from the stored offset and finishes byte-exact.
    const finished = await Promise.all(
      uploads.map(async (upload, i) => {
        const offset = stored[i]!;
        const req = openPatch(b.port, tenant, upload.path, { offset, length: upload.data.length - offset, protocol: upload.protocol, complete: true });
        const answer = answerOf(req);
        req.end(upload.data.subarray(offset));
        return answer;
      }),
    );
    for (const [i, answer] of finished.entries()) {
      expect(answer.status, answer.body).toBe(uploads[i]!.protocol === 'tus-v1' ? 204 : 201);
      expect(answer.headers['upload-offset']).toBe(String(uploads[i]!.data.length));
    }
    for (const upload of uploads) {
      const document = await documentOf(b.url(''), upload.path, tenant, upload.protocol);
      expect(document.length).toBe(upload.data.length);
      expect(sha256(document), upload.path).toBe(sha256(upload.data));
    }
  });
});
