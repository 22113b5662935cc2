# Stand-in for redis:7-alpine: Debian bookworm's Redis 7, run as the redis user from /data.
# Built by tools/docker-base-images.sh.
FROM local/debian:bookworm
# policy-rc.d: no package may start its service during the build (the build shares the host network).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
