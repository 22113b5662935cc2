#!/bin/sh
# The official nginx image's entrypoint contract: when starting nginx, run the executable
# /docker-entrypoint.d/*.sh in order (stopping at the first that fails) and source *.envsh.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for f in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
    case "$f" in
      *.envsh) if [ -x "$f" ]; then . "$f"; fi ;;
      *.sh) if [ -x "$f" ]; then echo "$0: launching $f"; "$f"; fi ;;
    esac
  done
fi
exec "$@"
