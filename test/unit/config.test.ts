import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, loadConfig } from '../../src/config.ts';

describe('config', () => {
  it('has a default for every variable but the optional endpoints', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3000);
    expect(config.AUTH_MODE).toBe('none');
    expect(config.MAX_DOCUMENT_BYTES).toBe(5 * 1024 ** 3);
    expect(config.ORDER_DEDUP_WINDOW_SECONDS).toBe(15);
    expect(config.AWS_REGION).toBe('us-east-1');
    expect(config.AWS_ENDPOINT_URL).toBeUndefined();
  });

  it('converts strings to the declared types', () => {
    const config = loadConfig({ PORT: '8080', S3_FORCE_PATH_STYLE: 'true', LOAD_SHED_EVENT_LOOP_UTILIZATION: '0.9' });
    expect(config.PORT).toBe(8080);
    expect(config.S3_FORCE_PATH_STYLE).toBe(true);
    expect(config.LOAD_SHED_EVENT_LOOP_UTILIZATION).toBe(0.9);
  });

  it('names every bad variable and what it got', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', AUTH_MODE: 'sometimes', MAX_DOCUMENT_BYTES: '-1' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('PORT:'))).toContain('"eighty"');
    expect(problems.find((p) => p.startsWith('AUTH_MODE:'))).toContain('must be one of none, api-key');
    expect(problems.find((p) => p.startsWith('MAX_DOCUMENT_BYTES:'))).toBeDefined();
  });

  it('accepts API keys only as tenant:sha256 pairs', () => {
    const hash = 'a'.repeat(64);
    expect(loadConfig({ API_KEYS: `acme:${hash},globex:${hash}` }).API_KEYS).toBe(`acme:${hash},globex:${hash}`);
    expect(() => loadConfig({ API_KEYS: 'acme:plain-secret' })).toThrow(/API_KEYS/);
  });

  it('rejects a malformed endpoint URL', () => {
    expect(() => loadConfig({ AWS_ENDPOINT_URL: 'localhost:4566' })).toThrow(/AWS_ENDPOINT_URL/);
  });

  it('takes KMS keys of one region with one region, and only names every region resolves with several', () => {
    const arn = 'arn:aws:kms:us-east-1:123456789012:key/0f0e';
    expect(loadConfig({ DOCUMENTS_KMS_KEY_ID: arn, TENANT_KMS_KEYS: `acme=${arn}` }).TENANT_KMS_KEYS).toBe(`acme=${arn}`);
    const regions = { AWS_REGION: 'us-east-1', DOCUMENTS_BUCKET: 'docs-a', DOCUMENT_REGIONS: 'us-east-1=docs-a,eu-west-1=docs-b' };
    const config = loadConfig({ ...regions, DOCUMENTS_KMS_KEY_ID: 'alias/docsvc-data', TENANT_KMS_KEYS: 'acme=alias/docsvc-tenant-acme,globex=mrk-1234abcd' });
    expect(config.DOCUMENTS_KMS_KEY_ID).toBe('alias/docsvc-data');
    expect(() => loadConfig({ ...regions, DOCUMENTS_KMS_KEY_ID: arn })).toThrow(/DOCUMENTS_KMS_KEY_ID: with several DOCUMENT_REGIONS/);
    expect(() => loadConfig({ ...regions, TENANT_KMS_KEYS: 'acme=0f0e1d2c-0000-4000-8000-000000000000' })).toThrow(/TENANT_KMS_KEYS: with several/);
    expect(() => loadConfig({ TENANT_KMS_KEYS: 'acme=alias/a,acme=alias/b' })).toThrow(/TENANT_KMS_KEYS: a tenant is listed twice/);
  });

  it('declares only UPPER_SNAKE environment variable names', () => {
    for (const name of Object.keys(ConfigSchema.properties)) expect(name).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });
});
