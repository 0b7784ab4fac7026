import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RunningProcess } from '../support/processes.ts';
import { documentOf, killApi, PART, sha256, startApi, tenantOf, tusUpload, UploadProxy, type Logged, type Tenant } from './support-proxy.ts';

// tus-js-client (4.3.1), in both of its protocols, uploading 50 MB in one
// PATCH (chunkSize Infinity) to an API process through a TCP proxy that cuts
// every live connection once about half of the body has gone up (placed by
// the proxy's byte count, not by the clock), then lets new connections
// through: the client resumes (HEAD, then PATCH from the offset the HEAD
// gave), the document is byte-exact, and what the client sent through the
// proxy in all is the document plus at most one part plus the requests'
// heads. What the client resends is what the API had not stored when the
// HEAD came: a HEAD first has an append of the upload still running on its
// instance stop and store what arrived (the API may not have seen the cut
// yet). So the resumed PATCH is at an offset the API accepts, and what is
// lost is only what was still in the socket buffers between proxy and API:
// from nothing, when the API had read up to the cut, to the proxy's send
// buffer and the API's receive buffer at most (net.ipv4.tcp_wmem and
// tcp_rmem, read below: an API slowed by other work on the machine leaves
// more in its receive buffer, up to 9 MB seen beside two busy loops).

const SIZE = 50_000_000;
/** The heads of the handful of requests an upload makes (a few hundred bytes each), with room to spare. */
const HEADS_ALLOWANCE = 64 * 1024;
/** The most a TCP socket buffers here (the max of net.ipv4.tcp_wmem or tcp_rmem). */
const socketBufferMax = (name: 'tcp_wmem' | 'tcp_rmem') => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
const IN_FLIGHT_MAX = socketBufferMax('tcp_wmem') + socketBufferMax('tcp_rmem');

let tenant: Tenant;
let api: RunningProcess;

beforeAll(async () => {
  tenant = tenantOf('clients');
  api = await startApi(tenant);
});

afterAll(async () => {
  if (api) await killApi(api);
});

describe('tus-js-client through a connection cut mid-body', () => {
  for (const protocol of ['tus-v1', 'ietf-draft-05'] as const) {
    it(`${protocol}: resumes from the stored offset and finishes byte-exact, resending only what the API had not read`, { timeout: 60_000 }, async () => {
      const data = randomBytes(SIZE);
      const proxy = await UploadProxy.start([api.port]);
      try {
        let cutAt: number | undefined;
        let cut = 0;
        proxy.whenUp(SIZE / 2, () => {
          cutAt = proxy.stats.bytesUp;
          cut = proxy.cut();
        });
        const { done, log } = tusUpload(data, { endpoint: proxy.url('/documents'), protocol, tenant });
        const { url } = await done;
        const bytesUp = proxy.stats.bytesUp;

        console.log(`[uploads] ${protocol}: cut at ${cutAt} bytes up (${cut} connection(s)); sent ${bytesUp} in all, ${bytesUp - SIZE} more than the document`);
        console.log(`[uploads] ${protocol}: requests ${JSON.stringify(log)}`);

        // Byte-exact.
        const stored = await documentOf(api.url(''), new URL(url).pathname, tenant, protocol);
        expect(stored.length).toBe(SIZE);
        expect(sha256(stored)).toBe(sha256(data));

        // The cut happened mid-body (the first PATCH got no answer), and the client resumed: HEAD, then a PATCH
        // from the offset the HEAD gave, past 0. That offset was accepted (an offset a HEAD answers must be one
        // the next PATCH can use: "Concurrency" in draft-ietf-httpbis-resumable-upload-05): one resumption,
        // which completed the upload. Every PATCH answer carries Upload-Offset.
        expect(cut).toBeGreaterThanOrEqual(1);
        const patches = log.filter((entry) => entry.method === 'PATCH');
        expect(patches.length).toBeGreaterThan(1);
        expect(patches[0]!.offset).toBe(0);
        expect(patches[0]!.status, 'the first PATCH was cut, not answered').toBeUndefined();
        for (const patch of patches) if (patch.status !== undefined) expect(patch.answerOffset, JSON.stringify(patch)).toBeTypeOf('number');
        expect(log.map((entry) => entry.method)).toEqual(['POST', 'PATCH', 'HEAD', 'PATCH']);
        const [, , head, resumed] = log as [Logged, Logged, Logged, Logged];
        expect(head.status).toBeLessThan(300);
        expect(head.answerOffset).toBeGreaterThan(0);
        expect(resumed).toMatchObject({ offset: head.answerOffset, status: protocol === 'tus-v1' ? 204 : 201, answerOffset: SIZE });

        // Resent: what was sent before the cut past the offset the HEAD gave, the heads aside; at most one
        // part (the bytes after the last one stored) and what the sockets between proxy and API still held.
        expect(bytesUp).toBeGreaterThan(SIZE);
        expect(bytesUp - SIZE, 'resent exactly what the API had not stored').toBeLessThanOrEqual(cutAt! - head.answerOffset! + HEADS_ALLOWANCE);
        expect(bytesUp, `sent ${bytesUp - SIZE} bytes more than the document`).toBeLessThanOrEqual(SIZE + PART + IN_FLIGHT_MAX + HEADS_ALLOWANCE);
      } finally {
        await proxy.close();
      }
    });
  }
});
