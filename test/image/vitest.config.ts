import { defineConfig } from 'vitest/config';

// `make test-image`: the built images run as containers (test/image/), apart
// from `make test` because they need a container runtime and the images.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/image/**/*.test.ts'],
    // The local stack on the host network, and podman's Docker-compatible API.
    globalSetup: ['test/image/global-setup.ts'],
    // One file at a time: each starts several containers on a 2-core machine.
    fileParallelism: false,
    env: {
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
