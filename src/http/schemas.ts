import { Type, type Static } from 'typebox';

// Shapes shared by every route. Domain schemas live next to their routes.

// Bounds are what the service sends: a detail names at most a request target,
// which Node bounds with the headers (16 KiB); a body of N bytes fails in at most N fields.
export const Problem = Type.Object(
  {
    type: Type.String({
      pattern: '^(urn:problem-type:[a-z0-9-]+|https://iana\\.org/assignments/http-problem-types#[a-z0-9-]+)$',
      maxLength: 96,
      description: 'urn:problem-type:<code in kebab case>, or the IANA problem type a specification registered (resumable uploads)',
    }),
    title: Type.String({ pattern: '^[A-Z][a-z0-9 ]*$', maxLength: 64, description: 'The code read as words' }),
    status: Type.Integer({ minimum: 400, maximum: 599, format: 'int32' }),
    detail: Type.String({ maxLength: 16_384 }),
    code: Type.String({ pattern: '^[A-Z][A-Z0-9_]*$', maxLength: 64, description: 'Stable; what clients branch on' }),
    requestId: Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$', maxLength: 128 }),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String({ maxLength: 16_384 }), message: Type.String({ maxLength: 1024 }) }), {
        maxItems: 16_384,
        description: 'VALIDATION_FAILED: every failing field',
      }),
    ),
    'expected-offset': Type.Optional(
      Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, format: 'int64', description: 'UPLOAD_OFFSET_MISMATCH: the offset of the upload' }),
    ),
    'provided-offset': Type.Optional(
      Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, format: 'int64', description: 'UPLOAD_OFFSET_MISMATCH: the Upload-Offset sent' }),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);
export type Problem = Static<typeof Problem>;

export const ProblemRef = Type.Ref('Problem');

/** Response schemas of the problems a route can answer, keyed by status. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(statuses.map((status) => [status, ProblemRef]));
}
