# Everything a newcomer runs. Node 24 comes from the npm package `node`
# (node_modules/.bin/node), which is first on PATH for every recipe.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export AWS_EC2_METADATA_DISABLED := true

DEPS := node_modules/.package-lock.json

.PHONY: dev test check build typecheck install redis bench clean

## dev: the local stack (DynamoDB, S3/SNS/SQS emulators, Redis) and the API, relay and consumer; Ctrl-C stops all
dev: install
	node src/local/dev.ts

## test: typecheck, build, then every test against a real local stack
test: install typecheck build
	vitest run --config test/vitest.config.ts

install: $(DEPS) redis

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

typecheck: $(DEPS)
	tsc -p test/tsconfig.json --noEmit

build: $(DEPS)
	rm -rf dist && tsc -p tsconfig.json

clean:
	rm -rf dist node_modules
