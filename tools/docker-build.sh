#!/usr/bin/env bash
# Build every image of docker-compose.yml with BuildKit, on the host network, tagged as compose names
# them (payment-gateway/<part>:latest), so `docker compose up --no-build` runs exactly these.
#   tools/docker-build.sh [part ...]     parts: migrate auth payments refunds webhooks dashboard gateway checkout-cdn
# pip inside the builds gets the machine's CA bundle (PIP_CA_BUNDLE, default
# /etc/ssl/certs/ca-certificates.crt) as the build secret `pip_ca`: it is mounted for the pip step
# only and never written into a layer. Layers are cached, and pip's downloads and built wheels
# live in a BuildKit cache mount shared by all builds, so a rebuild after a code change recompiles
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=$(bash tools/docker-engine.sh client)
export DOCKER_BUILDKIT=1
CA=${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
secret=()
mkdir -p .run
[ -s "$CA" ] && secret=(--secret "id=pip_ca,src=$CA")

declare -A DOCKERFILE=(
  [migrate]=database/Dockerfile [auth]=services/auth/Dockerfile [payments]=services/payments/Dockerfile
  [refunds]=services/refunds/Dockerfile [webhooks]=services/webhooks/Dockerfile [dashboard]=dashboard/Dockerfile
  [gateway]=gateway-nginx/Dockerfile [checkout-cdn]=services/checkout-cdn/Dockerfile
)
declare -A CONTEXT=([checkout-cdn]=services/checkout-cdn)
ORDER=(migrate auth payments refunds webhooks dashboard gateway checkout-cdn)

parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=("${ORDER[@]}")
for part in "${parts[@]}"; do
  file=${DOCKERFILE[$part]:?unknown part $part (one of: ${ORDER[*]})}
  tag=payment-gateway/$part:latest
  start=$(date +%s)
  "$DOCKER" build --network host "${secret[@]}" -f "$file" -t "$tag" "${CONTEXT[$part]:-.}" \
    >".run/build-$part.log" 2>&1 || { echo "build of $tag failed:"; tail -40 ".run/build-$part.log"; exit 1; }
  size=$("$DOCKER" image inspect -f '{{.Size}}' "$tag")
  printf '%-36s %6d MB  built in %ss\n' "$tag" $((size / 1000000)) $(( $(date +%s) - start ))
done
