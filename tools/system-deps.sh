#!/usr/bin/env bash
# Install the OS packages the project needs when they are missing (Debian; needs root).
#   tools/system-deps.sh run     nginx
#   tools/system-deps.sh test    nginx, chromium, npm (for the browser tests' axe-core), and Prometheus's
#                                binary from Debian's package, unpacked into .venv/prometheus, not installed
#                                (installing it starts a Prometheus service): tests/e2e/test_metrics.py runs it
#   tools/system-deps.sh bench   nginx, wrk, pgbench (postgresql-contrib)
#   tools/system-deps.sh compose chromium, the Docker engine (docker.io), Compose v1 (docker-compose)
#                                and debootstrap (local stand-ins of the base images)
set -euo pipefail
want=(nginx)
case "${1:-run}" in
  test) want+=(chromium npm prometheus) ;;
  bench) want+=(wrk) ;;
  compose) want=(chromium docker.io docker-compose debootstrap) ;;
esac
missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    npm) command -v npm >/dev/null 2>&1 || missing+=(npm) ;;
    wrk) command -v wrk >/dev/null 2>&1 || missing+=(wrk) ;;
    # A docker client may be there without an engine: dockerd is what counts.
    docker.io) command -v dockerd >/dev/null 2>&1 || missing+=(docker.io) ;;
    docker-compose) command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose) ;;
    debootstrap) command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap) ;;
    prometheus) [ -x .venv/prometheus/usr/bin/prometheus ] || unpack_prometheus=1 ;;
  esac
done
if [ "${unpack_prometheus:-}" = 1 ]; then
  echo "unpacking Debian's prometheus package into .venv/prometheus"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; }) \
    && mkdir -p .venv/prometheus && dpkg-deb -x "$tmp"/prometheus_*.deb .venv/prometheus
  rm -rf "$tmp"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing OS packages: ${missing[*]} (run as root or install them: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing OS packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
