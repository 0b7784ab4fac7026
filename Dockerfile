# One image for the API (default command), the outbox relay
# (`node dist/processes/relay.js`), the SQS consumer (`node dist/processes/order-consumer.js`) and the
# local bootstrap (`node dist/processes/bootstrap.js`). `make image` builds it (with
# docker or podman); the `emulators` target is the local stack for
# docker-compose.emulators.yml, never deployed.
#
# Node 24, the major of development (the `node` devDependency); the exact
# version is pinned so that a rebuild gets the same runtime. Bump both together.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim
# Built for linux/amd64 and linux/arm64 (docs/deploy.md, "Image
# architectures"). The stages that only make files the same on every
# architecture (node_modules without a native module or install script,
# compiled JavaScript) run on the building machine's own platform: an arm64
# build then runs no npm or tsc under emulation. BUILD_NODE_IMAGE is their
# base; it differs from NODE_IMAGE only for the local stand-ins, which are one
# image per architecture rather than one multi-architecture name.
ARG BUILD_NODE_IMAGE=${NODE_IMAGE}

# Production dependencies only, in their own stage so that neither npm's cache
# nor the dev tree reaches the final image. None has a native part
# (test/infra/dockerfile.test.ts checks the lockfile): the tree is the same
# for every architecture.
FROM --platform=$BUILDPLATFORM ${BUILD_NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: no runtime dependency needs an install script, and none
# gets to run one at build time.
RUN npm ci --omit=dev --ignore-scripts

# Compile TypeScript with the full dependency tree (its compiler is a native
# binary of the building machine's platform; its output is not).
FROM --platform=$BUILDPLATFORM ${BUILD_NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The `node` devDependency is a second Node binary for local work; without its
# install script its shim would shadow this image's Node in `npm run`, so drop it.
RUN npm ci --ignore-scripts && rm -f node_modules/.bin/node
COPY tsconfig.json ./
COPY src ./src
# The local tools (make dev, the emulators) stay out of the service's dist/.
RUN npm run build && mv dist/local /local

# The versions package-lock.json pins for what dist/local/stack.js loads
# (dynalite, fauxqs, typebox), in a file of their own: the emulators' npm
# install below reruns only when they change, not with every lockfile change.
FROM --platform=$BUILDPLATFORM ${BUILD_NODE_IMAGE} AS emulator-packages
COPY package-lock.json /tmp/
RUN node -p "['dynalite', 'fauxqs', 'typebox'].map((n) => n + '@' + require('/tmp/package-lock.json').packages['node_modules/' + n].version).join(' ')" > /packages

# The project's own emulators, as `make dev` runs them (dynalite, fauxqs and a
# real redis-server, src/local/emulators.ts), for docker compose on machines
# that cannot pull LocalStack; never deployed.
FROM ${NODE_IMAGE} AS emulators
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /emulators
COPY --from=emulator-packages /packages /tmp/packages
RUN npm install --no-save --no-audit --no-fund --ignore-scripts $(cat /tmp/packages) && rm -rf /root/.npm /tmp/packages
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /local ./dist/local
USER node
STOPSIGNAL SIGTERM
CMD ["node", "dist/local/stack.js"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# src/processes/v8-flags.ts: the flags every process of the service runs with.
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
# npm is not needed at run time, and its bundled packages are the usual
# findings of image scanners (ECR scans on push).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# Owned by root and read-only for the app: it cannot rewrite its own code.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# A uid and gid that no user of the nodes has (the base image's `node` is
# 1000, often a real user's uid on a host): a container escape lands as
# nobody. Numeric, as k8s runAsUser/runAsGroup and compose `user` say, so
# the kubelet can verify runAsNonRoot; no passwd entry is needed.
USER 10001:10001
EXPOSE 3000 9464
# Node is PID 1 with no init: the entry points handle SIGTERM themselves
# (drain, then exit), and they spawn no children to reap.
STOPSIGNAL SIGTERM
# Liveness of the API on PORT (src/processes/healthcheck.ts); compose overrides it for
# the background processes, which serve their health routes on METRICS_PORT.
# Kubernetes ignores it and uses the Deployments' probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD node dist/processes/healthcheck.js "${PORT:-3000}" /health/live
CMD ["node", "dist/processes/api.js"]
