# Stand-in for nginx:1.27-alpine: Debian bookworm's nginx behind the official image's start
# contract: /docker-entrypoint.sh runs /docker-entrypoint.d/* (stopping at the first failure) and
# renders /etc/nginx/templates/*.template with envsubst (only variables that are set), user
# `nginx`, /etc/nginx/conf.d included inside http {}, logs to stdout/stderr, wget for health
# checks. Built by tools/docker-base-images.sh.
FROM local/debian:bookworm
# policy-rc.d: no package may start its service during the build (the build shares the host network).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx gettext-base wget \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/sites-available \
    && useradd --system --uid 101 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \
    && mkdir -p /var/cache/nginx /etc/nginx/conf.d /docker-entrypoint.d /usr/share/nginx/html \
    && chown -R nginx:nginx /var/cache/nginx /var/lib/nginx \
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx.conf /etc/nginx/nginx.conf
COPY nginx-default.conf /etc/nginx/conf.d/default.conf
COPY nginx-entrypoint.sh /docker-entrypoint.sh
COPY nginx-envsubst-on-templates.sh /docker-entrypoint.d/20-envsubst-on-templates.sh
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
