import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import { Problem } from './schemas.ts';

/**
 * OpenAPI 3 generated from the same TypeBox schemas that validate requests.
 * Registered before any route so that every route is collected. Shared
 * schemas of a domain are added by the domain's own plugin.
 */
export const openapiPlugin = fp(
  async (app) => {
    app.addSchema(Problem);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Documents and orders service',
          description: 'Immutable documents and order intake. Errors are RFC 9457 problem details.',
          version: '1.0.0',
        },
        components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
        security: [{ apiKey: [] }],
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    });
    app.get('/openapi.json', { schema: { hide: true }, config: { public: true, shedding: false } }, async () =>
      app.swagger(),
    );
  },
  { name: 'openapi', fastify: '5.x' },
);
