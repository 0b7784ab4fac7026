// CloudFront in front of the documents bucket (issue 21, terraform/modules/region/cdn.tf),
// in every region of both deployments: a distribution that serves signed URLs
// only, reads the private bucket through origin access control, forwards
// exactly the response-* parameters a link sets and keys its cache on them;
// the bucket's and the keys' policies that let it read; the API's permission
// to read the private key; and cdn = false, which makes none of it.
import { describe, expect, it } from 'vitest';
import { Unknown } from './hcl-eval.ts';
import { exampleAccountId, parseEnvFile } from './helpers.ts';
import { CDN_PUBLIC_KEY, PRIMARY, deploy, everyRegion, one, regionsOf, twoRegionValues } from './deployments.ts';

const RESPONSE_PARAMETERS = ['response-content-disposition', 'response-content-type'];
const unknown = (text: unknown) => String(text);

describe.each(everyRegion)('CloudFront in %s', (_name, { plan: region, region: where, variant }) => {
  const at = (address: string) => new Unknown(`${region.prefix}${address}`);
  const distribution = region.instance('aws_cloudfront_distribution', 'documents', 0);
  const [behaviour] = distribution.default_cache_behavior;

  it('serves the documents bucket through origin access control, always signing with SigV4', () => {
    expect(distribution.origin).toEqual([
      { origin_id: 'documents', domain_name: at('aws_s3_bucket.documents.bucket_regional_domain_name'), origin_access_control_id: at('aws_cloudfront_origin_access_control.documents[0].id') },
    ]);
    expect(region.instance('aws_cloudfront_origin_access_control', 'documents', 0)).toMatchObject({
      origin_access_control_origin_type: 's3',
      signing_behavior: 'always',
      signing_protocol: 'sigv4',
    });
  });

  it('serves only URLs signed with a key of its trusted key group, over HTTPS, GET and HEAD only', () => {
    expect(behaviour).toMatchObject({ target_origin_id: 'documents', viewer_protocol_policy: 'https-only', allowed_methods: ['GET', 'HEAD'] });
    expect(behaviour.trusted_key_groups).toEqual([at('aws_cloudfront_key_group.links[0].id')]);
    expect(behaviour).not.toHaveProperty('trusted_signers');
    expect(region.instance('aws_cloudfront_key_group', 'links', 0).items).toEqual([at('aws_cloudfront_public_key.links[0].id')]);
    expect(region.instance('aws_cloudfront_public_key', 'links', 0).encoded_key).toBe(CDN_PUBLIC_KEY);
    expect(distribution).toMatchObject({ enabled: true, http_version: 'http2and3', price_class: 'PriceClass_100' });
  });

  it('forwards exactly the response-* parameters to S3 and keys its cache on them, nothing of the viewer else', () => {
    expect(behaviour.cache_policy_id).toEqual(at('aws_cloudfront_cache_policy.documents[0].id'));
    // The cache key's values go to the origin as well: no origin request policy, whose managed ones would drop them.
    expect(behaviour.origin_request_policy_id ?? null).toBeNull();
    const cache = region.instance('aws_cloudfront_cache_policy', 'documents', 0);
    // Immutable objects: long TTLs.
    expect(cache.default_ttl).toBeGreaterThanOrEqual(86400);
    expect(cache.max_ttl).toBeGreaterThanOrEqual(cache.default_ttl);
    const [key] = cache.parameters_in_cache_key_and_forwarded_to_origin;
    expect(key.query_strings_config).toEqual([{ query_string_behavior: 'whitelist', query_strings: [{ items: RESPONSE_PARAMETERS }] }]);
    expect(key.headers_config).toEqual([{ header_behavior: 'none' }]);
    expect(key.cookies_config).toEqual([{ cookie_behavior: 'none' }]);
  });

  it('asks TLS 1.2 of viewers on a name of its own, with its us-east-1 certificate', () => {
    expect(distribution.viewer_certificate).toEqual([{ cloudfront_default_certificate: true, acm_certificate_arn: null, ssl_support_method: null, minimum_protocol_version: 'TLSv1' }]);
    const domain = { name: 'files.example.com', certificate_arn: `arn:aws:acm:us-east-1:${exampleAccountId}:certificate/cdn` };
    const own = variant({ cdn_domain: domain }).instance('aws_cloudfront_distribution', 'documents', 0);
    expect(own.aliases).toEqual(['files.example.com']);
    expect(own.viewer_certificate).toEqual([{ cloudfront_default_certificate: false, acm_certificate_arn: domain.certificate_arn, ssl_support_method: 'sni-only', minimum_protocol_version: 'TLSv1.2_2021' }]);
    expect(deploy({ cdn_domain: { ...domain, certificate_arn: `arn:aws:acm:${PRIMARY}:${exampleAccountId}:certificate/x` } }).failedValidations()).toEqual([
      expect.stringMatching(/^var\.cdn_domain: An ACM certificate in us-east-1/),
    ]);
  });

  it('is refused without the public key of the pair, rather than made open', () => {
    expect(region.failedPreconditions('aws_cloudfront_distribution', 'documents', 0)).toEqual([]);
    expect(variant({ cdn_public_key_pem: null }).failedPreconditions('aws_cloudfront_distribution', 'documents', 0)).toEqual([expect.stringMatching(/make cdn-key/)]);
    expect(deploy({ cdn_public_key_pem: 'ssh-rsa AAAA' }).failedValidations()).toEqual([expect.stringMatching(/^var\.cdn_public_key_pem: /)]);
  });

  it('keeps the bucket private: its public access block on, its policy letting this distribution alone read objects', () => {
    expect(region.instance('aws_s3_bucket_public_access_block', 'documents')).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    const bucketPolicy = region.instance('aws_iam_policy_document', 'documents_bucket', undefined, 'data');
    expect(bucketPolicy.source_policy_documents).toEqual([at('data.aws_iam_policy_document.documents_bucket_cdn[0].json')]);
    const bucket = region.instance('aws_s3_bucket', 'documents').bucket;
    expect(region.instance('aws_iam_policy_document', 'documents_bucket_cdn', 0, 'data').statement).toEqual([
      {
        sid: 'CloudFrontReadsObjects',
        effect: 'Allow',
        actions: ['s3:GetObject'],
        resources: [`arn:aws:s3:::${bucket}/*`],
        principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
        condition: [{ test: 'StringEquals', variable: 'AWS:SourceArn', values: [at('aws_cloudfront_distribution.documents[0].arn')] }],
      },
    ]);
  });

  it("keeps the private key out of terraform: a secret in this region with no version, which the API alone may read", () => {
    expect(region.instance('aws_secretsmanager_secret', 'cdn_private_key', 0).region).toBe(where);
    expect(region.instances('aws_secretsmanager_secret_version').map(({ address }) => address)).toEqual([`${region.prefix}aws_secretsmanager_secret_version.redis_auth`]);
    const components = region.local.components as Record<string, { statements: { sid: string; actions: string[]; resources: unknown[] }[] }>;
    const readers = Object.entries(components).flatMap(([component, { statements }]) =>
      statements.filter((s) => s.resources.some((r) => unknown(r).includes('cdn_private_key'))).map((s) => [component, s.actions, s.resources.map(unknown)]),
    );
    expect(readers).toEqual([['api', ['secretsmanager:GetSecretValue'], [`<${region.prefix}aws_secretsmanager_secret.cdn_private_key[0].arn>`]]]);
  });

  it("lets CloudFront decrypt this region's documents, for a distribution of this account only", () => {
    const deployment = regionsOf(one)[where] ? one : deploy(twoRegionValues);
    const bucket = region.instance('aws_s3_bucket', 'documents').bucket;
    expect(deployment.instance('aws_iam_policy_document', 'kms_key', where, 'data').source_policy_documents).toEqual([
      new Unknown(`data.aws_iam_policy_document.kms_key_cdn["${where}"].json`),
    ]);
    expect(deployment.instance('aws_iam_policy_document', 'kms_key_cdn', where, 'data').statement).toEqual([
      {
        sid: 'CloudFrontDecryptsDocuments',
        actions: ['kms:Decrypt'],
        resources: ['*'],
        principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
        condition: [
          { test: 'StringLike', variable: 'AWS:SourceArn', values: [`arn:aws:cloudfront::${exampleAccountId}:distribution/*`] },
          { test: 'StringLike', variable: 'kms:EncryptionContext:aws:s3:arn', values: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] },
        ],
      },
    ]);
  });

  it('is opted out with cdn = false: nothing of CloudFront, no secret to read, S3 presigned links', () => {
    const off = variant({ cdn: false });
    for (const type of ['aws_cloudfront_distribution', 'aws_cloudfront_origin_access_control', 'aws_cloudfront_key_group', 'aws_cloudfront_public_key']) {
      expect(off.instances(type), type).toEqual([]);
    }
    expect(off.instances('aws_secretsmanager_secret').map(({ address }) => address)).toEqual([`${off.prefix}aws_secretsmanager_secret.redis_auth`]);
    expect(off.instance('aws_iam_policy_document', 'documents_bucket', undefined, 'data').source_policy_documents).toBeNull();
    expect(off.output('cdn')).toBeNull();
  });
});

describe('the pods of a deployment with CloudFront', () => {
  it("are configured with their region's distribution, key pair and secret; without it, with none", () => {
    const env = parseEnvFile(String(one.output('k8s_env')));
    const primary = regionsOf(one)[PRIMARY]!;
    expect(env).toMatchObject({
      DOCUMENT_CDN_DOMAIN: `<${primary.prefix}aws_cloudfront_distribution.documents[0].domain_name>`,
      DOCUMENT_CDN_KEY_PAIR_ID: `<${primary.prefix}aws_cloudfront_public_key.links[0].id>`,
      DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID: `<${primary.prefix}aws_secretsmanager_secret.cdn_private_key[0].arn>`,
    });
    expect(String(deploy({ cdn: false }).output('k8s_env'))).not.toMatch(/DOCUMENT_CDN_/);
    expect(one.output('cdn_private_key_secret_arns')).toEqual({ [PRIMARY]: new Unknown(`${primary.prefix}aws_secretsmanager_secret.cdn_private_key[0].arn`) });
  });
});
