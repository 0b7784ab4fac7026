import { Ajv } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

// The app's validator coerces nothing (a JSON body's "2" is not 2). A query
// string has only strings: its integers are read as numbers here, by the
// same rules (Ajv's) and with the same error shape as everything else.
const ajv = new Ajv({
  coerceTypes: true,
  useDefaults: true,
  removeAdditional: false,
  allErrors: true,
  formats: { int32: { type: 'number', validate: (value: number) => Number.isInteger(value) && Math.abs(value) < 2 ** 31 } },
});

/** The validator of a route's query string, for `validatorCompiler` on routes that take numbers in it. */
export const queryValidator: FastifySchemaCompiler<unknown> = ({ schema }) => ajv.compile(schema as object);
