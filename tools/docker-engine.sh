#!/usr/bin/env bash
# Start a Docker engine when none answers, and stop only the one this script started.
#   tools/docker-engine.sh start    start dockerd in the background unless `docker info` answers
#   tools/docker-engine.sh stop     stop dockerd if (and only if) `start` started it
#   tools/docker-engine.sh client   print the docker client to use for BuildKit builds
# The pid of a dockerd we started is kept in .run/dockerd.pid; its log in .run/dockerd.log.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-.run}
PID_FILE=$RUN_DIR/dockerd.pid

client() {
  # BuildKit is needed for the Dockerfiles' build secret and cache mounts. A client with the
  # buildx plugin has it; without buildx, a recent client refuses DOCKER_BUILDKIT=1, while
  # Debian's docker.io client (20.10, /usr/bin/docker) has BuildKit built in.
  if docker buildx version >/dev/null 2>&1; then echo docker; return; fi
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; return; fi
  echo docker
}

engine_up() { docker info >/dev/null 2>&1; }

case "${1:-start}" in
  start)
    if engine_up; then exit 0; fi
    command -v dockerd >/dev/null 2>&1 || bash tools/system-deps.sh compose
    if [ "$(id -u)" != 0 ]; then
      echo "no Docker engine answers and starting dockerd needs root" >&2; exit 1
    fi
    mkdir -p "$RUN_DIR"
    echo "starting dockerd (log: $RUN_DIR/dockerd.log)"
    # dockerd outlives this script: it must not inherit any other descriptor (a `flock` around
    # `make test-compose` would stay held by the daemon, and by containerd, until they stop).
    (
      for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-"
      done
      exec setsid dockerd >"$RUN_DIR/dockerd.log" 2>&1 < /dev/null
    ) &
    echo $! > "$PID_FILE"
    for _ in $(seq 1 60); do
      if engine_up; then exit 0; fi
      if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        echo "dockerd exited; last lines of $RUN_DIR/dockerd.log:" >&2; tail -20 "$RUN_DIR/dockerd.log" >&2; exit 1
      fi
      sleep 1
    done
    echo "dockerd did not answer within 60 s (see $RUN_DIR/dockerd.log)" >&2; exit 1 ;;
  stop)
    [ -f "$PID_FILE" ] || { echo "dockerd was not started by this script; leaving it alone"; exit 0; }
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$PID_FILE" ;;
  client) client ;;
  *) echo "usage: $0 start|stop|client" >&2; exit 2 ;;
esac
