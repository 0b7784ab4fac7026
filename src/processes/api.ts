import { buildApp } from '../app.ts';
import { runProcess } from './runtime.ts';

// The API: listens on PORT, and on SIGTERM/SIGINT stops accepting, lets
// in-flight requests finish, closes its clients and exits 0.
await runProcess({
  name: 'api',
  serve: async ({ config, log }) => ({
    server: await buildApp({ config, logger: log }),
    listen: { port: config.PORT, backlog: config.LISTEN_BACKLOG },
  }),
});
