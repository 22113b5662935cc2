# Stand-in for python:3.11-slim: Debian bookworm's Python 3.11 in a venv at /usr/local, so
# `python` and `pip` are on PATH and packages install under /usr/local as in the official image.
# Headers but no compiler, like the official slim image. Built by tools/docker-base-images.sh.
FROM local/debian:bookworm
# policy-rc.d: no package may start its service during the build (the build shares the host network).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv libpython3.11-dev ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local \
    && ln -sf /usr/local/bin/python3 /usr/local/bin/python \
    && /usr/local/bin/python -m pip --version
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin PYTHON_VERSION=3.11
CMD ["python3"]
