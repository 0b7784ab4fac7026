import { describe, expect, it } from 'vitest';
import { headerError } from '../../src/http/header-rules.ts';

const raw = (...names: string[]) => names.flatMap((name) => [name, 'v']);
const code = (error: Error | undefined) => (error as (Error & { code?: string }) | undefined)?.code;

describe('header rules', () => {
  it('refuses Host, Authorization or Idempotency-Key sent twice, in any case', () => {
    expect(headerError(raw('Host', 'host'), true)?.message).toContain('Host');
    expect(headerError(raw('Host', 'AUTHORIZATION', 'authorization'), true)?.message).toContain('Authorization');
    expect(headerError(raw('Host', 'Idempotency-Key', 'iDEMPOTENCY-kEY'), true)?.message).toContain('Idempotency-Key');
    expect(code(headerError(raw('HOST', 'hOsT'), false))).toBe('DUPLICATE_HEADER');
  });

  it('counts only those names: others of the same length are not mistaken for them', () => {
    // Same lengths (4, 13, 15), other names; '_' and '-' differ by more than the case bit.
    expect(headerError(raw('Host', 'Most', 'Hose', 'Accept-Ranges', 'Accept-Ranges', 'idempotency_key', 'idempotency_key', 'If-Match-Token1', 'If-Match-Token1'), true)).toBeUndefined();
    expect(headerError(raw('Host', 'Authorization', 'X-Request-Id', 'Idempotency-Key', 'Accept'), true)).toBeUndefined();
  });

  it('wants a Host in HTTP/1.1 only', () => {
    expect(code(headerError(raw('Accept'), true))).toBe('BAD_REQUEST');
    expect(headerError(raw('Accept'), false)).toBeUndefined();
  });
});
