/**
 * CPU of one signed link, the signers alone (no HTTP, no store): what
 * `get-link` spends per link besides its lookup, for S3 presigned URLs and
 * CloudFront signed URLs (a key pair generated here: the bench's stack has no
 * distribution). Outside `make bench`:
 *
 *   node bench/link-signing.ts [iterations]
 *
 * Prints µs of CPU (process.cpuUsage, user + system) per URL for each
 * signer, each measured after a warm-up, in alternating rounds (a shared
 * machine weighs on all alike); the median round of each. The `+memo` rows
 * are the same signers behind MemoisedLinkSigner, asked for one object
 * within one expiry bucket (linkValidity), as a hot document's link is:
 * what a request costs once its URL is signed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { CloudFrontLinkSigner, MemoisedLinkSigner, S3LinkSigner, linkValidity, type LinkSigner } from '../src/documents/links.ts';

const iterations = Number(process.argv[2] ?? 2000);
const rounds = 5;

const s3 = new S3Client({
  region: 'eu-west-1',
  endpoint: 'http://127.0.0.1:4566',
  forcePathStyle: true,
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
});
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const s3Signer = new S3LinkSigner(s3, 'documents');
const cloudFrontSigner = new CloudFrontLinkSigner({ domain: 'd111111abcdef8.cloudfront.net', keyPairId: 'K2JCJMDEHXQW5F', privateKey });
const signers: Record<string, LinkSigner> = {
  s3: s3Signer,
  cloudfront: cloudFrontSigner,
  's3+memo': new MemoisedLinkSigner(s3Signer),
  'cloudfront+memo': new MemoisedLinkSigner(cloudFrontSigner),
};
const target = { s3Key: 'public/link-0123/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', contentType: 'application/pdf', filename: 'link-0123' };

async function round(signer: LinkSigner, n: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await signer.sign(target, linkValidity(new Date(), 300));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

for (const signer of Object.values(signers)) await round(signer, Math.min(iterations, 500));
const results: Record<string, number[]> = Object.fromEntries(Object.keys(signers).map((name) => [name, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, signer] of Object.entries(signers)) results[name]!.push(await round(signer, iterations));
}
for (const [name, perUrl] of Object.entries(results)) {
  const sorted = [...perUrl].sort((a, b) => a - b);
  console.log(`${name.padEnd(16)} ${sorted[Math.floor(rounds / 2)]!.toFixed(1)} µs CPU per URL (rounds: ${perUrl.map((us) => us.toFixed(0)).join(', ')})`);
}
