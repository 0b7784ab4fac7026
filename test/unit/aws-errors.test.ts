import { describe, expect, it } from 'vitest';
import { CredentialsProviderError } from '@smithy/core/config';
import { translateAwsError } from '../../src/adapters/aws-errors.ts';

// The one place AWS failures are classified (with the SDK's own classifiers):
// what becomes a coded 503, and what passes through to its caller.

function awsError(name: string, fields: Record<string, unknown> = {}) {
  return Object.assign(new Error(`${name} happened`), { name, ...fields });
}

describe('translateAwsError', () => {
  it.each([
    ['throttling', awsError('ThrottlingException', { $metadata: { httpStatusCode: 400, requestId: 'R1' } }), 'SERVICE_UNAVAILABLE'],
    ['over provisioned throughput', awsError('ProvisionedThroughputExceededException', { $metadata: { httpStatusCode: 400 } }), 'SERVICE_UNAVAILABLE'],
    ['S3 slowing down', awsError('SlowDown', { $metadata: { httpStatusCode: 503 } }), 'SERVICE_UNAVAILABLE'],
    ['a 500', awsError('InternalError', { $fault: 'server', $metadata: { httpStatusCode: 500 } }), 'SERVICE_UNAVAILABLE'],
    ['a 501 (a server fault that is not transient)', awsError('NotImplemented', { $metadata: { httpStatusCode: 501 } }), 'SERVICE_UNAVAILABLE'],
    ['a reset connection', awsError('Error', { code: 'ECONNRESET' }), 'SERVICE_UNAVAILABLE'],
    ['a refused connection', awsError('Error', { code: 'ECONNREFUSED' }), 'SERVICE_UNAVAILABLE'],
    ['a name that does not resolve', awsError('Error', { code: 'ENOTFOUND' }), 'SERVICE_UNAVAILABLE'],
    ['credentials that cannot be had', new CredentialsProviderError('Could not load credentials from any providers'), 'SERVICE_UNAVAILABLE'],
    ['a request timeout', awsError('TimeoutError'), 'DEPENDENCY_TIMEOUT'],
    ['a socket timeout', awsError('Error', { code: 'ETIMEDOUT' }), 'DEPENDENCY_TIMEOUT'],
  ])('%s is a coded 503', (_name, error, code) => {
    const translated = translateAwsError(error, 'S3 GetObject');
    expect(translated).toMatchObject({ code, statusCode: 503, cause: error });
    expect((translated as Error).message).toMatch(/^S3 GetObject( \(credentials\))?: /);
  });

  it('names the AWS request id and the attempts in the logged message', () => {
    const error = awsError('InternalServerError', { $metadata: { httpStatusCode: 500, requestId: 'REQ-1', attempts: 3 } });
    expect((translateAwsError(error, 'DynamoDB GetItem') as Error).message).toBe(
      'DynamoDB GetItem: InternalServerError: InternalServerError happened (request id REQ-1, 3 attempt(s))',
    );
  });

  it.each([
    ['disabled', 'KMS.DisabledException'],
    ['pending deletion', 'KMS.KMSInvalidStateException'],
    ['deleted', 'KMS.NotFoundException'],
  ])('a KMS key S3 cannot use (%s) is a 503 CONTENT_KEY_UNAVAILABLE', (_name, name) => {
    const error = awsError(name, { $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'R2' } });
    const translated = translateAwsError(error, 'S3 GetObject');
    expect(translated).toMatchObject({ code: 'CONTENT_KEY_UNAVAILABLE', statusCode: 503, cause: error });
    expect((translated as Error).message).toBe(`S3 GetObject: ${name}: ${name} happened (request id R2)`);
    // Any other error of KMS (throttled, say) is a dependency failing.
    expect(translateAwsError(awsError('KMS.ThrottlingException', { $fault: 'client', $metadata: { httpStatusCode: 400 } }), 'S3 PutObject')).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
  });

  it.each([
    ['a failed condition', awsError('ConditionalCheckFailedException', { $fault: 'client', $metadata: { httpStatusCode: 400 } })],
    ['a missing S3 key', awsError('NoSuchKey', { $fault: 'client', $metadata: { httpStatusCode: 404 } })],
    ['a malformed request (our bug)', awsError('ValidationException', { $fault: 'client', $metadata: { httpStatusCode: 400 } })],
    ["the caller's own abort", awsError('AbortError')],
    ['a plain bug', new TypeError('x is undefined')],
  ])('%s passes through unchanged', (_name, error) => {
    expect(translateAwsError(error, 'S3 GetObject')).toBe(error);
  });
});
