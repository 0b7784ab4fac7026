#!/usr/bin/env bash
# `make compose-up` / `make compose-down`: compose with whatever the machine
# has, and up means "the API answers".
#
#   scripts/compose.sh up|down [FILE]     FILE: docker-compose.emulators.yml (default)
#
# Which compose, in this order:
#   - a Docker engine (`docker info` answers, and it is not podman behind
#     DOCKER_HOST): `docker compose` (v2), else `docker-compose`;
#   - podman: `docker compose` (v2) or Debian's `docker-compose` (1.29)
#     against podman's Docker-compatible API, else `podman-compose` (not
#     1.0.x: see below).
#   COMPOSE="…" picks one. The project is COMPOSE_PROJECT (docsvc-emulators).
#
# podman's API: DOCKER_HOST when it answers, else /run/podman/podman.sock when
# it answers (podman.socket under systemd), else a `podman system service`
# this script starts for the one compose command and stops after it (the
# containers do not need it to run). DOCKER_HOST is set for compose only,
# never for the caller: the Makefile's own choice of docker or podman stays.
#
# podman without systemd runs no health checks (it schedules them with
# systemd timers), so nothing here waits for `healthy`: the bootstrap waits for
# the emulators itself, the app waits for the bootstrap to succeed, and `up`
# waits for the API's /health/ready from the host (every container shares
# the host's network).
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: compose.sh up|down [FILE]}
file=${2:-docker-compose.emulators.yml}
project=${COMPOSE_PROJECT:-docsvc-emulators}
api_port=${DOCSVC_API_PORT:-3100}
say() { echo "compose: $*" >&2; }
fail() { say "$*"; exit 1; }

ping_socket() { curl -sf --max-time 2 --unix-socket "$1" http://podman/_ping >/dev/null 2>&1; }
behind_docker_host_is_podman() {
  case "${DOCKER_HOST:-}" in
    unix://*) curl -sf --max-time 2 --unix-socket "${DOCKER_HOST#unix://}" http://d/version 2>/dev/null | grep -qi podman ;;
    *) false ;;
  esac
}
docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && ! behind_docker_host_is_podman; }

tool=()
runtime=
if [ -n "${COMPOSE:-}" ]; then
  read -r -a tool <<<"$COMPOSE"
  docker_engine && runtime=docker || runtime=podman
elif docker_engine; then
  runtime=docker
  if docker compose version >/dev/null 2>&1; then tool=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then tool=(docker-compose)
  else fail "Docker is here but no compose: install Compose v2 (the docker compose plugin)"; fi
elif command -v podman >/dev/null 2>&1; then
  runtime=podman
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then tool=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then tool=(docker-compose)
  elif command -v podman-compose >/dev/null 2>&1; then tool=(podman-compose)
  else fail "podman is here but no compose: sudo apt-get install -y --no-install-recommends docker-compose (or podman-compose)"; fi
else
  fail "needs Docker, or podman (Debian: sudo apt-get install -y podman runc, then docker-compose or podman-compose)"
fi

# podman-compose 1.0.x (Debian 12's 1.0.3) joins every container to a
# network of its own even under `network_mode: host`, which podman refuses
# ("cannot set multiple networks"): every service of the emulators file uses
# the host's network. Later versions are tried as they are.
if [ "${tool[0]}" = podman-compose ]; then
  version=$(podman-compose -v 2>/dev/null | sed -n 's/.*podman-compose[r]* version *\([0-9.]*\).*/\1/p' | head -1)
  case "$version" in
    1.0.*) fail "podman-compose $version cannot run $file (it adds a network to host-network containers, which podman refuses); install docker-compose, which this script then prefers: sudo apt-get install -y --no-install-recommends docker-compose" ;;
  esac
fi

# What podman needs on machines of this kind (runc, rlimits): for the podman
# CLI that podman-compose runs, and for the API service below.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/scripts/podman/containers.conf}

service_pid=
service_dir=
compose_env=()
if [ "$runtime" = podman ] && [ "${tool[0]}" != podman-compose ]; then
  if [ -n "${DOCKER_HOST:-}" ] && behind_docker_host_is_podman; then
    :
  elif ping_socket /run/podman/podman.sock; then
    compose_env=(DOCKER_HOST=unix:///run/podman/podman.sock)
  else
    service_dir=$(mktemp -d "${TMPDIR:-/tmp}/docsvc-podman-XXXXXX")
    podman system service --time=0 "unix://$service_dir/podman.sock" >"$service_dir/service.log" 2>&1 &
    service_pid=$!
    for _ in $(seq 100); do ping_socket "$service_dir/podman.sock" && break; sleep 0.1; done
    ping_socket "$service_dir/podman.sock" || { cat "$service_dir/service.log" >&2; fail "podman system service did not answer"; }
    compose_env=(DOCKER_HOST="unix://$service_dir/podman.sock")
  fi
fi
stop_service() {
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  [ -z "$service_dir" ] || rm -rf "$service_dir"
}
trap stop_service EXIT

compose() { env "${compose_env[@]}" "${tool[@]}" -p "$project" -f "$file" "$@"; }

case "$action" in
  up)
    say "${tool[*]} with $runtime, project $project, $file"
    compose up -d
    say "waiting for the API on http://127.0.0.1:$api_port/health/ready"
    started=$SECONDS
    until curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$api_port/health/ready"; do
      if [ $((SECONDS - started)) -gt 180 ]; then
        compose ps >&2 || true
        compose logs --tail 30 >&2 || true
        fail "the API did not answer /health/ready within 180 s (logs above; make compose-down removes it all)"
      fi
      sleep 1
    done
    say "service on http://127.0.0.1:$api_port (ready after $((SECONDS - started)) s); make compose-down stops and removes it"
    ;;
  down)
    compose down --remove-orphans
    ;;
  *)
    fail "usage: compose.sh up|down [FILE]"
    ;;
esac
