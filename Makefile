# Everything a newcomer runs. Node 24 comes from the npm package `node`
# (node_modules/.bin/node), which is first on PATH for every recipe.
SHELL := /bin/bash
# .tools/bin: tools fetched for this clone only (promtool), never installed system-wide.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.tools/bin:$(PATH)
export AWS_EC2_METADATA_DISABLED := true

DEPS := node_modules/.package-lock.json
# openapi-typescript needs the TypeScript 5 compiler API; the project builds with TypeScript 7.
OPENAPI_TOOLS := tools/openapi-types/node_modules/.package-lock.json

.PHONY: dev watch-events test check build typecheck install redis promtool openapi-types bench capacity clean

## dev: the local stack (DynamoDB, S3/SNS/SQS emulators, Redis) and the API, relay, consumer and content sweeper; Ctrl-C stops all
dev: install
	@node src/local/dev.ts

## watch-events: the document.created and document.deleted events of a running `make dev`, one JSON line each; Ctrl-C stops
watch-events: $(DEPS)
	@node src/local/watch-events.ts

## test: typecheck, build, then every test against a real local stack
test: install promtool typecheck build
	vitest run --config test/vitest.config.ts

install: $(DEPS) $(OPENAPI_TOOLS) redis

# npm itself runs on the Node the service runs on (24), not on the machine's
# (Debian's is 20): npm checks every package's `engines` against the Node it
# runs on, and under Node 20 it warns about two dozen packages that need 22 or
# 24, which is true of Node 20 and says nothing about this project. That Node
# is the binary of the npm package node-linux-<arch>, the very one the `node`
# devDependency installs into node_modules/.bin, unpacked once into .tools/.
NODE_VERSION := $(shell sed -n '/"node_modules\/node": {/,/}/s/.*"version": "\(.*\)".*/\1/p' package-lock.json)
NODE_ARCH := $(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
NPM_NODE := .tools/node-v$(NODE_VERSION)/bin/node
NPM := PATH=$(CURDIR)/.tools/node-v$(NODE_VERSION)/bin:$$PATH npm

$(NPM_NODE):
	@echo "fetching Node $(NODE_VERSION) for npm to run on (npm package node-linux-$(NODE_ARCH), into .tools/)"
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  (cd "$$tmp" && npm pack --silent "node-linux-$(NODE_ARCH)@$(NODE_VERSION)" >/dev/null); \
	  mkdir -p "$$tmp/x" $(@D) && tar -xzf "$$tmp"/node-linux-*.tgz -C "$$tmp/x"; \
	  install -m 0755 "$$tmp/x/package/bin/node" $@

# What npm still prints, and why:
# - "ERESOLVE overriding peer dependency" for @opentelemetry/api: @fastify/otel
#   0.21 carries @opentelemetry/core 2.x, whose peer range stops below the
#   @opentelemetry/api 1.10 the project uses. The 1.x API is backwards
#   compatible, and test/telemetry/tracing.test.ts checks the traces it makes.
# Install scripts: package.json's allowScripts lets `node` (the Node 24 binary)
# and `classic-level` (dynalite's prebuilt store) run theirs, and denies the
# rest, which nothing here needs: ssh2 and cpu-features (optional native
# speed-ups for SSH to a Docker host, which the tests never use), protobufjs
# 7 (a version-scheme notice) and @scarf/scarf (install-time analytics).
$(DEPS): package.json package-lock.json $(NPM_NODE)
	$(NPM) ci --no-audit --no-fund
	@touch $@

# redis-server is a Debian package; install it when we can, else say how.
redis:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing redis-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: run 'sudo apt-get install -y redis-server'" >&2; exit 1; \
	  fi; \
	fi

$(OPENAPI_TOOLS): tools/openapi-types/package.json tools/openapi-types/package-lock.json $(NPM_NODE)
	$(NPM) ci --prefix tools/openapi-types --no-audit --no-fund
	@touch $@

## openapi-types: rewrite test/openapi/api.ts (the generated client's types) from the served /openapi.json
openapi-types: install
	node test/openapi/document.ts

# promtool (the alert rules' checks and unit tests, `make test` only) from
# Debian's prometheus package, unpacked into .tools/ without installing it:
# installed, the package would also start a Prometheus server listening on
# every interface (port 9090) on a machine with systemd.
promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || \
	    { echo "promtool is missing: put Prometheus's promtool on PATH (Debian: the prometheus package has it)" >&2; exit 1; }; \
	  echo "fetching promtool (Debian package prometheus, unpacked into .tools/; no service installed)"; \
	  set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  if [ "$$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$$tmp"; fi; \
	  if ! apt-cache show prometheus >/dev/null 2>&1; then \
	    [ "$$(id -u)" = 0 ] || { echo "apt knows no prometheus package: run 'sudo apt-get update' first" >&2; exit 1; }; \
	    apt-get update -qq; \
	  fi; \
	  (cd "$$tmp" && apt-get download -qq prometheus) && \
	  dpkg-deb -x "$$tmp"/prometheus_*.deb "$$tmp/x" && \
	  install -D -m 0755 "$$tmp/x/usr/bin/promtool" .tools/bin/promtool; \
	fi

typecheck: $(DEPS)
	tsc -p test/tsconfig.json --noEmit

build: $(DEPS)
	rm -rf dist && tsc -p tsconfig.json

## bench: load tests (autocannon) against the local stack; writes bench/results/latest.json
## make bench SCENARIOS=get-hot,orders: only those scenarios or groups (bench/README.md)
bench: install build
	$(if $(SCENARIOS),BENCH_ONLY='$(SCENARIOS)') node bench/run.ts

## capacity: the deployment for 10M reads/s and 5000 orders/s, from bench/results/latest.json; writes docs/capacity.md
capacity: $(DEPS)
	node bench/capacity/capacity.ts

clean:
	rm -rf dist node_modules tools/openapi-types/node_modules .tools

# ---- Images (docs/operations.md: "Build the image")
# docker when its engine answers, else podman (Debian's podman runs as root
# without a daemon). Evaluated only by the recipes that use it.
# podman's own API behind DOCKER_HOST (as compose uses it) is still podman:
# building through it would lose the podman flags below.
CONTAINER_RUNTIME ?= $(shell if docker info >/dev/null 2>&1 && ! docker version 2>/dev/null | grep -qi podman; then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; fi)
# podman here: runc (crun cannot run in hybrid cgroups), the Docker image
# format (OCI drops HEALTHCHECK), explicit rlimits (its defaults fail with EPERM).
PODMAN_FLAGS := --runtime runc --format docker --ulimit nofile=20000:20000 --ulimit nproc=10000:10000
BUILD_FLAGS   = --network host $(if $(filter podman,$(CONTAINER_RUNTIME)),$(PODMAN_FLAGS))
# The official base the Dockerfile names; scripts/base-image.sh falls back to a
# local stand-in (never pushed) when it cannot be pulled.
NODE_IMAGE := $(shell sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)
# The one tag of this build, computed once: the commit, plus -dirty when the
# tree differs from it. ecr-push pushes exactly this tag and writes it, with
# the pushed digest, into k8s/image.env: what is deployed is what was pushed.
IMAGE_TAG := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo untracked)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
IMAGE     := docsvc:$(IMAGE_TAG)
EMULATORS_IMAGE := docsvc-emulators:local
# The image is built for both kinds of node (docs/deploy.md, "Image
# architectures"): x86 and Graviton. Go's and Debian's names.
IMAGE_ARCHES := amd64 arm64
HOST_ARCH    := $(subst x86_64,amd64,$(subst aarch64,arm64,$(shell uname -m)))
OTHER_ARCHES := $(filter-out $(HOST_ARCH),$(IMAGE_ARCHES))
# Whether binaries of architecture $(1) run here: QEMU's user-mode emulator
# registered with binfmt_misc (what a build of another architecture needs).
emulated = grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-$$(case $(1) in arm64) echo aarch64;; amd64) echo x86_64;; esac) 2>/dev/null
EMULATION_HINT := Debian: apt-get install -y qemu-user-static binfmt-support

.PHONY: image image-emulators test-image

## image: the service image, docsvc:<commit> (and docsvc:local for compose), with docker or podman,
## and docsvc:<commit>-<arch> for each architecture this machine can build (docs/deploy.md, "Image architectures")
# Progress: each step of the build, with the seconds since the start. Measured
# (docs/operations.md): 1-2 minutes with no layer cached, about 15 s with all;
# the first time, the local stand-in base before it (36 s to 3 min).
# The other architecture reuses the stages that ran on this machine (the
# Dockerfile's --platform=$$BUILDPLATFORM): under emulation only the last
# stage's few steps run. Without an emulator it is skipped, and said so.
# The official base is one name for both: --platform picks. The stand-ins
# are two local names, whose own architecture the image takes: podman 4.3,
# given --platform, looks every FROM up for that platform, a stage's own
# --platform notwithstanding, fails to find this machine's stand-in and
# tries to pull it (docs/deploy.md, "Image architectures").
LOCAL_BASES = $(if $(filter podman,$(CONTAINER_RUNTIME)),--pull=never)
image:
	@test -n "$(CONTAINER_RUNTIME)" || { echo "make image needs docker or podman (apt-get install -y podman runc)" >&2; exit 1; }
	@start=$$(date +%s); \
	  base=$$(scripts/base-image.sh $(CONTAINER_RUNTIME) $(NODE_IMAGE)) && \
	  echo "building $(IMAGE) FROM $$base with $(CONTAINER_RUNTIME) (1-2 minutes; about 15 s when nothing changed)" && \
	  $(CONTAINER_RUNTIME) build $(BUILD_FLAGS) --build-arg NODE_IMAGE=$$base -t $(IMAGE) -t $(IMAGE)-$(HOST_ARCH) -t docsvc:local . && \
	  echo "$(IMAGE): $$(( $$($(CONTAINER_RUNTIME) image inspect --format '{{.Size}}' $(IMAGE)) / 1000000 )) MB, made in $$(( $$(date +%s) - start )) s" && \
	  for arch in $(OTHER_ARCHES); do \
	    if ! $(call emulated,$$arch); then \
	      echo "image: not building linux/$$arch: no emulator for it is registered here ($(EMULATION_HINT))"; continue; fi; \
	    start=$$(date +%s); \
	    other=$$(scripts/base-image.sh $(CONTAINER_RUNTIME) $(NODE_IMAGE) $$arch) && \
	    echo "building $(IMAGE)-$$arch FROM $$other with $(CONTAINER_RUNTIME), under emulation" && \
	    if [ "$$other" = "$$base" ]; then platform="--platform linux/$$arch"; else platform="$(LOCAL_BASES)"; fi; \
	    $(CONTAINER_RUNTIME) build $(BUILD_FLAGS) $$platform \
	      --build-arg NODE_IMAGE=$$other --build-arg BUILD_NODE_IMAGE=$$base -t $(IMAGE)-$$arch . && \
	    echo "$(IMAGE)-$$arch: made in $$(( $$(date +%s) - start )) s" || exit 1; \
	  done

## image-emulators: dynalite, fauxqs and redis-server in one image, for docker-compose.emulators.yml
image-emulators:
	@test -n "$(CONTAINER_RUNTIME)" || { echo "make image-emulators needs docker or podman" >&2; exit 1; }
	@start=$$(date +%s); \
	  base=$$(scripts/base-image.sh $(CONTAINER_RUNTIME) $(NODE_IMAGE)) && \
	  echo "building $(EMULATORS_IMAGE) FROM $$base with $(CONTAINER_RUNTIME) (about 30 s; a few when nothing changed)" && \
	  $(CONTAINER_RUNTIME) build $(BUILD_FLAGS) --build-arg NODE_IMAGE=$$base --target emulators -t $(EMULATORS_IMAGE) . && \
	  echo "$(EMULATORS_IMAGE): made in $$(( $$(date +%s) - start )) s"

## test-image: build both images, then run them as Kubernetes would and check them from outside (test/image/)
# DOCSVC_ARCH_IMAGES: the images of the other architectures that make image
# built, which test/image/architectures.test.ts starts; it fails for an
# architecture of DOCSVC_OTHER_ARCHES that has none (no emulator registered).
test-image: install image image-emulators
	DOCSVC_IMAGE=$(IMAGE) DOCSVC_EMULATORS_IMAGE=$(EMULATORS_IMAGE) CONTAINER_RUNTIME=$(CONTAINER_RUNTIME) DOCSVC_OTHER_ARCHES="$(OTHER_ARCHES)" \
	  DOCSVC_ARCH_IMAGES="$$(for arch in $(OTHER_ARCHES); do $(call emulated,$$arch) && echo $$arch=$(IMAGE)-$$arch; done)" \
	  vitest run --config test/image/vitest.config.ts

# ---- Compose (docs/operations.md: "Run with compose")
# scripts/compose.sh finds the compose the machine has (Compose v2, Debian's
# docker-compose 1.29 against podman's API, podman-compose) and waits for the API.
TF := terraform -chdir=terraform

.PHONY: compose-up compose-down compose-localstack-up compose-localstack-down \
        tf-init tf-plan tf-apply cdn-key cdn-key-upload kubeconfig ecr-push ecr-replicate k8s-config k8s-secret k8s-apply k8s-delete test-infra

## compose-up: the service on the project's own emulators (nothing pulled), on http://127.0.0.1:3100; returns once it answers
compose-up: image image-emulators
	@scripts/compose.sh up docker-compose.emulators.yml

## compose-down: stop and remove it; the emulators keep nothing
compose-down:
	@scripts/compose.sh down docker-compose.emulators.yml

## compose-localstack-up: the same on LocalStack and Redis from Docker Hub (Docker with Compose v2 and Docker Hub access)
compose-localstack-up:
	docker compose up --build -d

## compose-localstack-down: stop it and drop its data
compose-localstack-down:
	docker compose down --volumes --remove-orphans

# ---- Deployment (docs/deploy.md)

## tf-init / tf-plan / tf-apply: the AWS infrastructure (terraform/terraform.tfvars holds your settings)
# The state holds the first Redis token: it goes to the S3 backend that
# terraform/backend.hcl names (backend.hcl.example). A trial may keep it
# locally instead, asked for by terraform/local_override.tf (docs/deploy.md,
# "Where the state lives"); with neither, tf-init refuses rather than prompt.
TF_BACKEND_CONFIG := $(CURDIR)/terraform/backend.hcl
TF_LOCAL_OVERRIDE := $(CURDIR)/terraform/local_override.tf
tf-init:
	@if [ -f "$(TF_BACKEND_CONFIG)" ]; then \
	  echo "terraform state: the S3 backend of $(TF_BACKEND_CONFIG)"; \
	  $(TF) init -backend-config="$(TF_BACKEND_CONFIG)"; \
	elif [ -f "$(TF_LOCAL_OVERRIDE)" ]; then \
	  echo "terraform state: local, in terraform/ (a trial: $(TF_LOCAL_OVERRIDE) asks for it)"; \
	  $(TF) init; \
	else \
	  echo "tf-init: no state backend: write terraform/backend.hcl (from backend.hcl.example), or for a trial copy terraform/local_override.tf.example to terraform/local_override.tf (docs/deploy.md)" >&2; \
	  exit 1; \
	fi
tf-plan:
	$(TF) plan -out=tfplan
tf-apply:
	$(TF) apply tfplan

## cdn-key: the key pair that signs CloudFront links: the public key into terraform/cdn.auto.tfvars, the private key into .cdn/ (before tf-plan)
# The operator's, not terraform's: the private key never enters the state (docs/deploy.md, "CloudFront").
CDN_KEY := .cdn/private-key.pem
cdn-key:
	@test ! -e $(CDN_KEY) || { echo "cdn-key: $(CDN_KEY) exists (upload it with make cdn-key-upload, or remove it to make a new pair)" >&2; exit 1; }
	@mkdir -p -m 0700 .cdn
	@(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $(CDN_KEY))
	@{ echo 'cdn_public_key_pem = <<EOT'; openssl pkey -in $(CDN_KEY) -pubout; echo 'EOT'; } > terraform/cdn.auto.tfvars
	@echo "wrote terraform/cdn.auto.tfvars (public key) and $(CDN_KEY) (private key: make cdn-key-upload after tf-apply)"

## cdn-key-upload: put the private key into each region's secret (after tf-apply), then delete the local copy
cdn-key-upload:
	@test -f $(CDN_KEY) || { echo "cdn-key-upload: no $(CDN_KEY): run make cdn-key first" >&2; exit 1; }
	@set -e; $(TF) output -json cdn_private_key_secret_arns | node -e 'for (const [r, a] of Object.entries(JSON.parse(require("fs").readFileSync(0, "utf8")))) console.log(r, a)' | \
	  while read -r region arn; do \
	    aws secretsmanager put-secret-value --region "$$region" --secret-id "$$arn" --secret-string "file://$(CDN_KEY)" >/dev/null; \
	    echo "private key put into $$arn"; done
	@rm -f $(CDN_KEY)
	@echo "removed $(CDN_KEY): the secrets hold the only copy"

## kubeconfig: point kubectl at the EKS cluster
kubeconfig:
	$$($(TF) output -raw configure_kubectl)

## ecr-push: build for the nodes (linux/amd64 and linux/arm64) from the official base, push as $(IMAGE_TAG), record it in k8s/image.env
# The tag is the commit (a dirty tree is refused: the tag must name the code),
# the repository's tags are immutable, and k8s/image.env gets the tag and the
# digest ECR reports for it: the Deployments run exactly the pushed image.
# One manifest list for both architectures; a tag already pushed is not
# pushed again, and its digest is recorded (scripts/ecr-push.sh).
IMAGE_ENV ?= k8s/image.env
ecr-push:
	@case "$(IMAGE_TAG)" in *-dirty|untracked*) \
	  echo "ecr-push: refusing to push $(IMAGE_TAG): commit first, so that the tag names the code" >&2; exit 1;; esac
	@test -n "$(CONTAINER_RUNTIME)" || { echo "ecr-push needs docker or podman" >&2; exit 1; }
	@set -e; repo=$$($(TF) output -raw ecr_repository_url); region=$$($(TF) output -raw region); \
	RUNTIME=$(CONTAINER_RUNTIME) REPOSITORY=$$repo REGION=$$region TAG=$(IMAGE_TAG) IMAGE_ENV=$(IMAGE_ENV) \
	  BUILD_FLAGS="$(BUILD_FLAGS)" ARCHES="$(IMAGE_ARCHES)" scripts/ecr-push.sh

## ecr-replicate: copy $(IMAGE_TAG) into every region's repository that lacks it (after adding a region; skopeo)
# ECR's replication copies only what is pushed after a region is added.
ecr-replicate:
	@set -e; repo=$$($(TF) output -raw ecr_repository_url); region=$$($(TF) output -raw region); \
	repos=$$($(TF) output -json region_clusters | jq -r 'to_entries[] | "\(.key) \(.value.image_repository)"'); \
	REPOSITORY=$$repo REGION=$$region TAG=$(IMAGE_TAG) REPOSITORIES="$$repos" scripts/ecr-replicate.sh

## k8s-config: write k8s/aws.env (resource names, Redis endpoint) and k8s/cluster-autoscaler/cluster.env from the terraform outputs
k8s-config:
	$(TF) output -raw k8s_env > k8s/aws.env
	printf 'AWS_REGION=%s\nCLUSTER_NAME=%s\n' "$$($(TF) output -raw region)" "$$($(TF) output -raw cluster_name)" > k8s/cluster-autoscaler/cluster.env

## k8s-secret: the docsvc-secrets Secret from k8s/secret.env (API_KEYS=tenant:<sha256 hex of the key>,...)
# Server-side apply: no last-applied-configuration annotation copies the data.
k8s-secret:
	@test -f k8s/secret.env || { echo 'k8s-secret: write k8s/secret.env first (see k8s/secret.env.example)' >&2; exit 2; }
	kubectl apply --server-side -f k8s/namespace.yaml
	kubectl -n docsvc create secret generic docsvc-secrets --from-env-file=k8s/secret.env --dry-run=client -o yaml \
	  | kubectl apply --server-side --field-manager=docsvc-secrets --force-conflicts -f -

## k8s-apply: kubectl apply -k k8s/cluster-autoscaler/ (the node autoscaler), then k8s/, and wait for the rollouts
k8s-apply:
	kubectl apply --server-side -k k8s/cluster-autoscaler/
	kubectl apply --server-side -k k8s/
	for d in $$(kubectl -n docsvc get deployments -l app.kubernetes.io/name=docsvc -o name); do \
	  kubectl -n docsvc rollout status $$d --timeout=5m || exit 1; done

## k8s-delete: remove everything k8s/ created (before terraform destroy)
k8s-delete:
	kubectl delete -k k8s/ --ignore-not-found
	kubectl delete -k k8s/cluster-autoscaler/ --ignore-not-found

## test-infra: offline checks of Dockerfile, compose, k8s and terraform
test-infra: $(DEPS)
	vitest run --config test/vitest.config.ts test/infra
