import { configDefaults, defineConfig } from 'vitest/config';

// Three projects, so that `make test` takes minutes, not ten, and a busy
// machine cannot fail it (docs/operations.md, "Tests and benchmarks"):
// - offline: files that read the repository or call pure code. No local stack.
//   Named to sort before stack: vitest runs a group's projects in name order,
//   and the model's regeneration (test/unit/capacity.test.ts, about 12 s of
//   CPU) then starts first instead of ending the group alone.
// - stack: the rest, on one local stack (dynalite, fauxqs, redis-server), four
//   files at a time. Most of their time is spent waiting on the stack, not on
//   the CPU, so four workers on two cores finish in a third of the time of two.
//   Offline and stack files share their worker's modules (isolate: false): a
//   fresh import of the app per file was a sixth of the suite's CPU.
// - faults: the files that measure latencies against deadlines, or load the
//   machine themselves. They run after the others, two at a time, on a stack
//   of their own and a process each, so that what they measure is their fault
//   and not a neighbour's.
const TIMED = ['test/faults/**/*.test.ts', 'test/security/slow-requests.test.ts', 'test/documents/large-documents.test.ts'];
// test/infra/load-balancer.test.ts is the exception: it registers the app, on the stack.
const OFFLINE = ['test/unit/**/*.test.ts', 'test/infra/!(load-balancer).test.ts'];

const env = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_EC2_METADATA_DISABLED: 'true' };
const exclude = [...configDefaults.exclude, 'test/image/**'];

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    // The image's tests need the built images and a container runtime: `make test-image` (test/image/vitest.config.ts).
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'offline', include: OFFLINE, exclude, env, maxWorkers: 4, isolate: false, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'stack',
          include: ['test/**/*.test.ts'],
          exclude: [...exclude, ...OFFLINE, ...TIMED],
          globalSetup: ['test/support/global-setup.ts'],
          env,
          maxWorkers: 4,
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: TIMED,
          exclude,
          globalSetup: ['test/support/global-setup.ts'],
          env,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
