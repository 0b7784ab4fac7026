import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    // The image's tests need the built images and a container runtime: `make test-image` (test/image/vitest.config.ts).
    exclude: [...configDefaults.exclude, 'test/image/**'],
    // One local stack (dynalite, fauxqs, redis-server) for the whole run.
    globalSetup: ['test/support/global-setup.ts'],
    env: {
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
