# Everything a newcomer runs. Node 24 comes from the npm package `node`
# (node_modules/.bin/node), which is first on PATH for every recipe.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export AWS_EC2_METADATA_DISABLED := true

DEPS := node_modules/.package-lock.json
# openapi-typescript needs the TypeScript 5 compiler API; the project builds with TypeScript 7.
OPENAPI_TOOLS := tools/openapi-types/node_modules/.package-lock.json

.PHONY: dev test check build typecheck install redis promtool openapi-types bench capacity clean

## dev: the local stack (DynamoDB, S3/SNS/SQS emulators, Redis) and the API, relay and consumer; Ctrl-C stops all
dev: install
	node src/local/dev.ts

## test: typecheck, build, then every test against a real local stack
test: install typecheck build
	vitest run --config test/vitest.config.ts

install: $(DEPS) $(OPENAPI_TOOLS) redis promtool

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
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

$(OPENAPI_TOOLS): tools/openapi-types/package.json tools/openapi-types/package-lock.json
	npm ci --prefix tools/openapi-types --no-audit --no-fund
	@touch $@

## openapi-types: rewrite test/openapi/api.ts (the generated client's types) from the served /openapi.json
openapi-types: install
	node test/openapi/document.ts

# promtool (the alert rules' checks and unit tests) comes with Debian's prometheus package.
promtool:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing promtool (Debian package prometheus)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "promtool is missing: run 'sudo apt-get install -y prometheus'" >&2; exit 1; \
	  fi; \
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
	rm -rf dist node_modules tools/openapi-types/node_modules

# ---- Containers and deployment (README: "Run with docker compose", "Deploy to AWS (EKS)")
IMAGE     ?= docsvc:local
IMAGE_TAG ?= $(shell git rev-parse --short HEAD)
TF        := terraform -chdir=terraform

.PHONY: docker-build compose-up compose-down tf-init tf-plan tf-apply kubeconfig \
        ecr-push k8s-config k8s-secret k8s-apply test-infra

## docker-build: the service image
docker-build:
	docker build -t $(IMAGE) .

## compose-up: the service with LocalStack and Redis on http://127.0.0.1:3000
compose-up:
	docker compose up --build

## compose-down: stop compose and drop its data
compose-down:
	docker compose down --volumes --remove-orphans

## tf-init / tf-plan / tf-apply: the AWS infrastructure
tf-init:
	$(TF) init
tf-plan:
	$(TF) plan -out=tfplan
tf-apply:
	$(TF) apply tfplan

## kubeconfig: point kubectl at the EKS cluster
kubeconfig:
	$$($(TF) output -raw configure_kubectl)

## ecr-push: build for the nodes (linux/amd64) and push to ECR as $(IMAGE_TAG)
ecr-push:
	@repo=$$($(TF) output -raw ecr_repository_url) && \
	aws ecr get-login-password --region $$($(TF) output -raw region) \
	  | docker login --username AWS --password-stdin $${repo%%/*} && \
	docker build --platform linux/amd64 -t $$repo:$(IMAGE_TAG) . && \
	docker push $$repo:$(IMAGE_TAG)

## k8s-config: write k8s/aws.env and k8s/image.env from the terraform outputs
k8s-config:
	$(TF) output -raw k8s_env > k8s/aws.env
	echo "IMAGE=$$($(TF) output -raw ecr_repository_url):$(IMAGE_TAG)" > k8s/image.env

## k8s-secret: make k8s-secret API_KEYS=tenant:<sha256 hex of the key>
k8s-secret:
	@test -n "$(API_KEYS)" || { echo 'usage: make k8s-secret API_KEYS=tenant:<sha256 hex of the key>' >&2; exit 2; }
	kubectl apply -f k8s/namespace.yaml
	@kubectl -n docsvc create secret generic docsvc-secrets \
	  --from-literal=API_KEYS='$(API_KEYS)' \
	  --from-literal=REDIS_URL="$$($(TF) output -raw redis_url)" \
	  --dry-run=client -o yaml | kubectl apply -f -

## k8s-apply: kubectl apply -k k8s/ and wait for the rollouts
k8s-apply:
	kubectl apply -k k8s/
	for d in api relay consumer; do kubectl -n docsvc rollout status deployment/docsvc-$$d --timeout=5m || exit 1; done

## test-infra: offline checks of Dockerfile, compose, k8s and terraform
test-infra: $(DEPS)
	vitest run --config test/vitest.config.ts test/infra
