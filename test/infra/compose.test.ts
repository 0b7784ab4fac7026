// The compose files: valid against the compose schema (dclint ships it), lint
// clean, and wired the way `compose up` needs: the emulators, then the
// one-shot bootstrap, then the API, relay and consumer, each as hardened as
// on Kubernetes. docker-compose.emulators.yml also runs for real, through
// `make compose-up`, in `make test-image` (test/image/compose.test.ts).
import { join } from 'node:path';
import { DCLinter } from 'dclint';
import { describe, expect, it } from 'vitest';
import { entryPoints, type Json, readCompose, readText, root, routes, tools } from './helpers.ts';

const appServices = ['api', 'relay', 'consumer', 'lifecycle'] as const;
const imageServices = [...appServices, 'bootstrap'] as const;
/** What each file runs besides the image's processes. */
const backingServices = {
  'docker-compose.yml': ['localstack', 'redis'],
  'docker-compose.emulators.yml': ['emulators'],
} as const;
const files = Object.keys(backingServices) as (keyof typeof backingServices)[];

/** `make dev`'s own ports (src/local/dev.ts): compose must not take them by default. */
const makeDevPorts = ['3000', '4566', '8000', '6379'];

describe.each(files)('%s', (file) => {
  const compose = readCompose(file);
  const services: Record<string, Json> = compose.services;
  const backing = backingServices[file];

  it('validates against the compose schema and passes every dclint rule', () => {
    // No rule configured = every rule on, at its default level. One exception:
    // docker-compose 1.x (Debian's, which `make test-image` runs) refuses a
    // top-level `name:`, so the emulators file leaves the project name to `-p`.
    const rules = file === 'docker-compose.emulators.yml' ? { 'require-project-name-field': 0 as const } : {};
    const linter = new DCLinter({ rules, quiet: true, debug: false, exclude: [] });
    const [result, ...others] = linter.lintFiles([join(root, file)], false);
    expect(others).toHaveLength(0);
    expect(result?.messages).toEqual([]);
  });

  it('has the app services, the bootstrap and its backing services', () => {
    expect(Object.keys(services).sort()).toEqual([...imageServices, ...backing].sort());
  });

  it('runs one image, every process of the service by its command', () => {
    const images = new Set(imageServices.map((name) => services[name].image));
    expect(images).toEqual(new Set(['docsvc:local']));
    for (const name of imageServices) expect(services[name].command).toEqual(['node', entryPoints[name]]);
  });

  it('health-checks every long-running service, the app on a route its process serves', () => {
    for (const name of [...appServices, ...backing]) expect(services[name].healthcheck?.test, name).toBeDefined();
    for (const name of appServices) {
      const [kind, node, script, port, path] = services[name].healthcheck.test;
      expect([kind, node, script]).toEqual(['CMD', 'node', tools.healthcheck]);
      expect(name === 'api' ? routes.api : routes.worker).toContain(path);
      // The port the process listens on: PORT for the API, METRICS_PORT for the others.
      const env = services[name].environment;
      expect(port, name).toBe(String(name === 'api' ? env.PORT : env.METRICS_PORT));
      // No argument with a space: podman's Docker API splits a check's arguments at spaces.
      for (const arg of services[name].healthcheck.test) expect(arg, name).not.toMatch(/\s/);
    }
  });

  it('starts the bootstrap after its backing services, and the app once the bootstrap has succeeded', () => {
    // LocalStack's file is for Docker, whose health checks run: it waits for
    // `healthy`. The emulators' file also runs on podman without systemd,
    // where health checks never run and `service_healthy` would wait forever:
    // it waits for nothing healthy, and the bootstrap waits for the emulators
    // itself (src/processes/bootstrap.ts).
    const after = file === 'docker-compose.yml' ? 'service_healthy' : 'service_started';
    const backingReady = Object.fromEntries(backing.map((name) => [name, { condition: after }]));
    expect(services.bootstrap.depends_on).toEqual(file === 'docker-compose.yml' ? { localstack: backingReady.localstack } : backingReady);
    expect(services.bootstrap.restart).toBe('no');
    for (const name of appServices) {
      expect(services[name].depends_on, name).toEqual({ bootstrap: { condition: 'service_completed_successfully' }, ...backingReady });
    }
    if (file === 'docker-compose.emulators.yml') {
      const conditions = Object.values(services).flatMap((service) => Object.values((service.depends_on ?? {}) as Record<string, Json>).map((d) => d.condition));
      expect(conditions).not.toContain('service_healthy');
      expect(readText('src/processes/bootstrap.ts')).toMatch(/ECONNREFUSED/);
    }
  });

  it("runs the app containers as hardened as on Kubernetes: the image's user, no capabilities, no privilege escalation, read-only root", () => {
    const imageUser = [...readText('Dockerfile').matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    expect(imageUser).toMatch(/^\d+:\d+$/);
    for (const name of imageServices) {
      expect(services[name].user, name).toBe(imageUser);
      expect(services[name].cap_drop, name).toEqual(['ALL']);
      expect(services[name].security_opt, name).toEqual(['no-new-privileges:true']);
      expect(services[name].read_only, name).toBe(true);
      expect(services[name].tmpfs, name).toEqual(['/tmp']);
    }
  });

  it('gives the app longer to stop than its own shutdown deadline', () => {
    for (const name of appServices) {
      const grace = /^(\d+)s$/.exec(services[name].stop_grace_period ?? '')?.[1];
      expect(Number(grace) * 1000, name).toBeGreaterThan(Number(services[name].environment.SHUTDOWN_TIMEOUT_MS));
    }
  });

  it("keeps off make dev's ports by default, and lets each host port be set", () => {
    const text = readText(file);
    const published = [...text.matchAll(/\$\{(DOCSVC_[A-Z_]+):-(\d+)\}/g)];
    expect(published.length).toBeGreaterThan(0);
    const defaults = new Map<string, string>();
    for (const [, name = '', port = ''] of published) {
      expect(makeDevPorts, name).not.toContain(port);
      // One default per variable, wherever it is used.
      expect(defaults.get(name) ?? port, name).toBe(port);
      defaults.set(name, port);
    }
  });
});

describe('docker-compose.yml (LocalStack)', () => {
  const services: Record<string, Json> = readCompose('docker-compose.yml').services;

  it('pins LocalStack to the last image without an auth token, and says why', () => {
    expect(services.localstack.image).toBe('localstack/localstack:4.14.0');
    const source = readText('docker-compose.yml');
    const comment = source.slice(0, source.indexOf('localstack/localstack:4.14.0'));
    const why = comment.slice(comment.lastIndexOf('localstack:')).replace(/\s*#\s*/g, ' ');
    expect(why).toMatch(/last .*without an auth token/);
    expect(services.localstack.environment.SERVICES.split(',').sort()).toEqual(['dynamodb', 's3', 'sns', 'sqs']);
    expect(services.redis.image).toBe('redis:7-alpine');
  });

  it('builds the image in the api service, and publishes only the API (and LocalStack for the CLI) on loopback', () => {
    expect(imageServices.filter((name) => services[name].build !== undefined)).toEqual(['api']);
    expect(services.api.ports).toEqual([`127.0.0.1:3100:${services.api.environment.PORT}`]);
    expect(services.localstack.ports).toEqual(['127.0.0.1:4576:4566']);
    for (const name of ['relay', 'consumer', 'lifecycle', 'bootstrap', 'redis']) expect(services[name].ports, name).toBeUndefined();
  });
});

describe("docker-compose.emulators.yml (the project's own emulators)", () => {
  const services: Record<string, Json> = readCompose('docker-compose.emulators.yml').services;

  it('pulls nothing: every image is one `make image image-emulators` builds', () => {
    expect(services.emulators.image).toBe('docsvc-emulators:local');
    for (const [name, service] of Object.entries(services)) {
      expect(service.build, name).toBeUndefined();
      expect(service.image, name).toMatch(/^docsvc(-emulators)?:local$/);
    }
    expect(readText('Dockerfile')).toMatch(/^FROM \$\{NODE_IMAGE\} AS emulators$/m);
  });

  it("runs the emulators as make dev does, hardened like the app, with a health check of all three", () => {
    expect(services.emulators.command).toEqual(['node', tools.emulators]);
    expect(services.emulators.healthcheck.test).toEqual(['CMD', 'node', tools.emulators, 'check']);
    expect(Object.keys(services.emulators.environment).sort()).toEqual(['AWS_EMULATOR_PORT', 'DYNAMODB_EMULATOR_PORT', 'REDIS_PORT']);
    expect(services.emulators).toMatchObject({ user: '1000:1000', cap_drop: ['ALL'], read_only: true, tmpfs: ['/tmp'] });
  });

  it('shares the host network and listens on loopback only, publishing no port', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.network_mode, name).toBe('host');
      expect(service.ports, name).toBeUndefined();
    }
    for (const name of imageServices) expect(services[name].environment.HOST, name).toBe('127.0.0.1');
  });
});
