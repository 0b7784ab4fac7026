import { expect } from 'vitest';
import type { Problem } from '../../src/http/schemas.ts';

type Answer = { statusCode: number; body: string; headers: Record<string, unknown>; json(): any };

/** The contract's error shape: problem+json, the code, and the request id of the answer. */
export function expectProblem(response: Answer, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = response.json();
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(body.requestId).toBe(response.headers['x-request-id']);
  return body as Problem;
}
