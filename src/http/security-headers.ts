import fp from 'fastify-plugin';

/**
 * Headers every answer of an API should carry: no MIME sniffing of stored
 * documents (they are served with the client's own Content-Type), no
 * framing, no referrer leaks. A JSON API needs no more of helmet than this.
 */
export const securityHeadersPlugin = fp(
  async (app) => {
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('x-content-type-options', 'nosniff');
      reply.header('x-frame-options', 'DENY');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
      return payload;
    });
  },
  { name: 'security-headers', fastify: '5.x' },
);
