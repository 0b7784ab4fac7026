import { afterAll, describe, expect, it } from 'vitest';
import { HttpRequest } from '@smithy/core/transport';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { PartBuffers, uploadStream } from '../../src/adapters/s3-multipart.ts';
import { testConfig, uniqueId } from '../support/app.ts';
import { generatedBody } from '../support/large-body.ts';

// Uploaded content is not hashed a second time for the signature: parts and
// single PUTs go as UNSIGNED-PAYLOAD, with a CRC32 that S3 checks instead
// (src/adapters/aws.ts). The local S3 emulator ignores signatures, so what
// is checked is the request as signed, just before it is sent.

const MiB = 1024 * 1024;
const config = testConfig();
const aws = createAwsClients(config);
afterAll(() => aws.destroy());

type Sent = { command: string; contentSha256: string | undefined; signedHeaders: string; crc32: string | undefined };
const sent: Sent[] = [];
aws.s3Transfer.middlewareStack.add(
  (next, context) => (args) => {
    if (HttpRequest.isInstance(args.request)) {
      const headers = args.request.headers;
      sent.push({
        command: context.commandName ?? '',
        contentSha256: headers['x-amz-content-sha256'],
        signedHeaders: /SignedHeaders=([^,]+)/.exec(headers['authorization'] ?? '')?.[1] ?? '',
        crc32: headers['x-amz-checksum-crc32'],
      });
    }
    return next(args);
  },
  // After signing (finalizeRequest), before the request goes out.
  { step: 'deserialize', name: 'recordSignedRequests' },
);

const upload = (size: number) => {
  const body = generatedBody(size);
  return uploadStream(body.stream(), {
    client: aws.s3Transfer,
    bucket: config.DOCUMENTS_BUCKET,
    key: `upload-signing/${uniqueId('signed')}`,
    buffers: new PartBuffers(5 * MiB, { spares: 1, maxUploads: 1 }),
    partsInFlight: 1,
  });
};

describe('uploads as signed', () => {
  it('send every part, and a body of one part, as UNSIGNED-PAYLOAD with its CRC32, the header itself signed', async () => {
    sent.length = 0;
    await upload(11 * MiB);
    await upload(2 * MiB);
    const content = sent.filter((request) => request.command === 'UploadPartCommand' || request.command === 'PutObjectCommand');
    expect(content.map((request) => request.command)).toEqual(['UploadPartCommand', 'UploadPartCommand', 'UploadPartCommand', 'PutObjectCommand']);
    for (const request of content) {
      expect(request.contentSha256).toBe('UNSIGNED-PAYLOAD');
      expect(request.signedHeaders.split(';')).toContain('x-amz-content-sha256');
      expect(request.crc32).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    }
  });

  it('leave the other calls signed over their payload', async () => {
    sent.length = 0;
    await upload(6 * MiB);
    const others = sent.filter((request) => request.command === 'CreateMultipartUploadCommand' || request.command === 'CompleteMultipartUploadCommand');
    expect(others).toHaveLength(2);
    for (const request of others) expect(request.contentSha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
