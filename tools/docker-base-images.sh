#!/usr/bin/env bash
# Make sure the base images the Dockerfiles and docker-compose.yml name exist in the local engine.
# Each is pulled when a registry answers; when none does (as on machines with no registry access),
# a local stand-in is built from Debian packages and tagged with the official name, so the
# unchanged Dockerfiles build on it:
#   local/debian:bookworm   debootstrap --variant=minbase from the apt mirror this machine uses
#   python:3.11-slim        Debian's Python 3.11 in a venv at /usr/local (python, pip on PATH)
#   postgres:15-alpine      Debian's PostgreSQL 15 with an entrypoint honouring POSTGRES_* like the official one
#   redis:7-alpine          Debian's Redis 7
#   nginx:1.27-alpine       Debian's nginx with the official image's entrypoint contract (templates, entrypoint.d)
# Usage: tools/docker-base-images.sh [--force-local]   (--force-local skips the pull attempts)
# Every image already present is left alone; `docker rmi` one to rebuild it.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=tools/docker-base
FORCE_LOCAL=0
[ "${1:-}" = "--force-local" ] && FORCE_LOCAL=1
DOCKER=$(bash tools/docker-engine.sh client)
export DOCKER_BUILDKIT=1

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

pull() {
  [ "$FORCE_LOCAL" = 1 ] && return 1
  echo "trying to pull $1"
  timeout 60 "$DOCKER" pull -q "$1" >/dev/null 2>&1
}

apt_mirror() {
  # The Debian mirror apt already uses here (deb822 or one-line sources), else the public one.
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -hs '^deb ' /etc/apt/sources.list | awk '$2 !~ /security/ {print $2}' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

debian_base() {
  have local/debian:bookworm && return
  command -v debootstrap >/dev/null 2>&1 || bash tools/system-deps.sh compose
  local mirror rootfs
  mirror=$(apt_mirror)
  rootfs=$(mktemp -d /tmp/gw-rootfs.XXXXXX)
  echo "debootstrap bookworm from $mirror (a few minutes)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/gw-debootstrap.log 2>&1 \
    || { tail -20 /tmp/gw-debootstrap.log >&2; rm -rf "$rootfs"; return 1; }
  local security=${mirror%/debian}/debian-security
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
  # Keep images small, as Debian's slim images do: no docs, man pages or translations, and no
  # package files or apt caches left behind by later layers' installs.
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    > "$rootfs/etc/dpkg/dpkg.cfg.d/01-nodoc"
  cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CLEAN
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | "$DOCKER" import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - local/debian:bookworm >/dev/null
  rm -rf "$rootfs"
  echo "built local/debian:bookworm"
}

standin() {  # standin TAG DOCKERFILE
  local tag=$1 file=$2
  have "$tag" && { echo "$tag: present"; return; }
  pull "$tag" && { echo "$tag: pulled"; return; }
  debian_base
  echo "$tag: building a local stand-in from Debian packages ($file)"
  "$DOCKER" build --network host -q -t "$tag" -f "$HERE/$file" "$HERE" >/dev/null
  "$DOCKER" image inspect -f "$tag: stand-in built, {{.Size}} bytes" "$tag"
}

bash tools/docker-engine.sh start
standin python:3.11-slim python.Dockerfile
standin postgres:15-alpine postgres.Dockerfile
standin redis:7-alpine redis.Dockerfile
standin nginx:1.27-alpine nginx.Dockerfile
