import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { until, type RunningProcess } from '../support/processes.ts';
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
  tusUpload,
  UploadProxy,
  writePiece,
  type Tenant,
} from './support-proxy.ts';

// Two API processes on one stack: the state of an upload is in DynamoDB and
// S3, never in a process, so the instance that took an upload's bytes may
// die (SIGKILL) and the other continues the upload from what was durably
// stored.
//
// (a) A raw streamed PATCH on A, SIGKILLed once A stored a part (B's HEAD
//     says so); B's HEAD gives the offset (whole parts: a killed process
//     stores nothing more), and the rest sent to B completes a byte-exact
//     document.
// (b) Four tus-js-client uploads through a round-robin proxy over A and B,
//     A SIGKILLed once half of all their bytes have gone up: every upload
//     resumes on B and finishes byte-exact.

let tenant: Tenant;
let a: RunningProcess;
let b: RunningProcess;
const started: RunningProcess[] = [];

async function start(): Promise<RunningProcess> {
  const api = await startApi(tenant, { MAX_CONCURRENT_UPLOADS: '32', MAX_CONCURRENT_UPLOADS_PER_TENANT: '32' });
  started.push(api);
  return api;
}

beforeAll(async () => {
  tenant = tenantOf('instances');
});

afterAll(async () => {
  await Promise.all(started.map((api) => killApi(api)));
});

describe('an upload continues on another instance when the one that took its bytes dies', () => {
  it('(a) SIGKILL of A mid-body once a part is stored: B answers the stored offset, and the rest sent to B completes the document byte-exact', { timeout: 60_000 }, async () => {
    [a, b] = await Promise.all([start(), start()]);
    const size = 16 * 1024 * 1024 + 12_345;
    const data = randomBytes(size);
    const path = await createUpload(a.port, tenant, size);

    const patch = openPatch(a.port, tenant, path, { offset: 0, length: size });
    const answer = answerOf(patch);
    answer.catch(() => {});
    // Stream the body in pieces until B sees a stored part, never all of it.
    let sent = 0;
    let storedSeen = 0;
    const watcher = until(
      async () => {
        const head = await headUpload(b.url(''), path, tenant);
        storedSeen = head.offset;
        return head.offset > 0 || undefined;
      },
      30_000,
      () => `a stored part of ${path} seen on B (sent ${sent})`,
    );
    let seen = false;
    void watcher.then(() => (seen = true), () => {});
    const cap = size - PART; // never the whole body: the kill is mid-body
    while (!seen && sent < cap) {
      const piece = data.subarray(sent, Math.min(cap, sent + 256 * 1024));
      await writePiece(patch, piece);
      sent += piece.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await watcher;
    expect(patch.destroyed, 'the PATCH is still open on A').toBe(false);

    await killApi(a);
    expect(a.child.signalCode).toBe('SIGKILL');
    await expect(answer).rejects.toThrow(); // A never answered: it died mid-body

    const head = await headUpload(b.url(''), path, tenant);
    console.log(`[uploads] (a) sent ${sent} bytes to A; B saw ${storedSeen} stored before the kill, ${head.offset} after`);
    expect(head.status).toBe(200);
    expect(head.offset).toBeGreaterThanOrEqual(storedSeen);
    expect(head.offset).toBeGreaterThan(0);
    expect(head.offset).toBeLessThanOrEqual(sent);
    // A process that dies stores nothing more: what is durable is whole parts.
    expect(head.offset % PART).toBe(0);
    expect(head.headers.get('upload-length')).toBe(String(size));

    // The rest, to B, from the offset B gave.
    const rest = openPatch(b.port, tenant, path, { offset: head.offset, length: size - head.offset });
    const finished = answerOf(rest);
    rest.end(data.subarray(head.offset));
    const done = await finished;
    expect(done.status, done.body).toBe(204);
    expect(done.headers['upload-offset']).toBe(String(size));
    expect(done.headers['content-location']).toMatch(/^\/documents\//);

    const stored = await documentOf(b.url(''), path, tenant);
    expect(stored.length).toBe(size);
    expect(sha256(stored)).toBe(sha256(data));
  });

  it('(b) four paced tus-js-client uploads over A and B in turn, A SIGKILLed midway: every one finishes byte-exact', { timeout: 90_000 }, async () => {
    a = await start();
    if (!b || b.child.exitCode !== null || b.child.signalCode !== null) b = await start();
    const proxy = await UploadProxy.start([a.port, b.port]);
    try {
      const files = Array.from({ length: 4 }, (_, i) => randomBytes(15 * 1024 * 1024 + 1000 * i + 7));
      const total = files.reduce((sum, file) => sum + file.length, 0);
      let killedAt: number | undefined;
      let perTargetAtKill: Record<string, number> = {};
      // The kill, placed by bytes: once half of all the uploads' bytes went up through the proxy.
      proxy.whenUp(total / 2, () => {
        killedAt = proxy.stats.bytesUp;
        perTargetAtKill = { a: proxy.stats.perTarget.get(a.port) ?? 0, b: proxy.stats.perTarget.get(b.port) ?? 0 };
        a.child.kill('SIGKILL');
      });
      const uploads = files.map((file, i) =>
        tusUpload(file, {
          endpoint: proxy.url('/documents'),
          protocol: i % 2 === 0 ? 'tus-v1' : 'ietf-draft-05',
          tenant,
          // Paced: several PATCHes each (4 MiB, less than a part: each leaves a tail the next one reads back, on whichever instance).
          chunkSize: 4 * 1024 * 1024,
        }),
      );
      const results = await Promise.all(uploads.map((upload) => upload.done));
      await killApi(a); // already killed: waits for its exit
      console.log(`[uploads] (b) A killed at ${killedAt} of ${total} bytes up; connections before the kill ${JSON.stringify(perTargetAtKill)}, in all ${JSON.stringify(Object.fromEntries(proxy.stats.perTarget))}`);
      for (const [i, upload] of uploads.entries()) console.log(`[uploads] (b) upload ${i}: ${JSON.stringify(upload.log)}`);

      expect(killedAt).toBeDefined();
      expect(a.child.signalCode).toBe('SIGKILL');
      // Both instances took connections before the kill.
      expect(perTargetAtKill.a).toBeGreaterThan(0);
      expect(perTargetAtKill.b).toBeGreaterThan(0);
      // The kill interrupted at least one upload, which resumed (HEAD, then a PATCH) on B.
      const interrupted = uploads.filter((upload) => upload.log.some((entry) => entry.error !== undefined || (entry.status ?? 0) >= 500));
      expect(interrupted.length).toBeGreaterThanOrEqual(1);
      for (const upload of interrupted) {
        const failedAt = upload.log.findIndex((entry) => entry.error !== undefined || (entry.status ?? 0) >= 500);
        expect(upload.log.slice(failedAt + 1).some((entry) => entry.method === 'HEAD' && (entry.status ?? 0) < 300)).toBe(true);
      }

      for (const [i, { url }] of results.entries()) {
        const stored = await documentOf(b.url(''), new URL(url).pathname, tenant);
        expect(stored.length).toBe(files[i]!.length);
        expect(sha256(stored), `upload ${i}`).toBe(sha256(files[i]!));
      }
    } finally {
      await proxy.close();
    }
  });
});
