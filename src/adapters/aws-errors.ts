import { ProviderError } from '@smithy/core/config';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { contentKeyFailure, dependencyFailure } from '../errors.ts';

// AWS failures are classified here, at the adapter boundary, with the SDK's
// own classifiers (the ones its retry strategy uses), and leave the adapters
// as the service's coded errors: the HTTP layer maps codes only.

export type RetryErrorType = 'THROTTLING' | 'TRANSIENT' | 'SERVER_ERROR' | 'CLIENT_ERROR';

type AwsError = Error & { code?: string; $metadata?: { requestId?: string; attempts?: number } };
type Classifiable = Parameters<typeof isTransientError>[0];

/** The SDK's classifiers follow `cause` as an Error; anything else there would be read as one. */
function classifiable(error: Error): error is Error & Classifiable {
  return error.cause === undefined || error.cause instanceof Error;
}

/** How the SDK's retry strategy sees a failed attempt. */
export function retryErrorType(error: Error): RetryErrorType {
  if (!classifiable(error)) return 'CLIENT_ERROR';
  if (isThrottlingError(error)) return 'THROTTLING';
  if (isTransientError(error)) return 'TRANSIENT';
  if (isServerError(error)) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}

function isTimeout(error: AwsError): boolean {
  return ['TimeoutError', 'RequestTimeout', 'RequestTimeoutException'].includes(error.name) || error.code === 'ETIMEDOUT';
}

/** One line for the log: the call, the error, the AWS request id and the attempts when known. */
function describe(call: string, error: AwsError): string {
  const facts = [
    error.$metadata?.requestId && `request id ${error.$metadata.requestId}`,
    error.$metadata?.attempts && `${error.$metadata.attempts} attempt(s)`,
  ].filter(Boolean);
  return `${call}: ${error.name}: ${error.message}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`;
}

const UNUSABLE_KEY = new Set(['KMS.DisabledException', 'KMS.KMSInvalidStateException', 'KMS.NotFoundException']);

/**
 * The final error of an AWS call, as the service reports it: a dependency
 * that is down, throttling or failing (or credentials that cannot be had)
 * becomes SERVICE_UNAVAILABLE, one that did not answer in time
 * DEPENDENCY_TIMEOUT. S3 passes on the error of KMS when the key of an
 * object cannot be used (disabled, pending deletion, gone):
 * CONTENT_KEY_UNAVAILABLE; any other error of KMS is a dependency failing.
 * Any other client fault (a failed condition, a missing key, a malformed
 * request) and the caller's own abort pass through unchanged: they are the
 * caller's to handle, or a bug.
 */
export function translateAwsError(error: unknown, call: string): unknown {
  if (!(error instanceof Error) || error.name === 'AbortError') return error;
  if (error instanceof ProviderError) return dependencyFailure('unavailable', describe(`${call} (credentials)`, error), error);
  if (UNUSABLE_KEY.has(error.name)) return contentKeyFailure(describe(call, error), error);
  if (retryErrorType(error) === 'CLIENT_ERROR' && !error.name.startsWith('KMS.')) return error;
  return dependencyFailure(isTimeout(error) ? 'timeout' : 'unavailable', describe(call, error), error);
}
