#!/usr/bin/env bash
# Install the OS packages the project needs when they are missing (Debian; needs root).
#   tools/system-deps.sh run     nginx
#   tools/system-deps.sh test    nginx, chromium
#   tools/system-deps.sh bench   nginx, wrk, pgbench (postgresql-contrib)
set -euo pipefail
want=(nginx)
case "${1:-run}" in
  test) want+=(chromium) ;;
  bench) want+=(wrk) ;;
esac
missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    wrk) command -v wrk >/dev/null 2>&1 || missing+=(wrk) ;;
  esac
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing OS packages: ${missing[*]} (run as root or install them: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing OS packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
