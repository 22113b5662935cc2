#!/bin/sh
# Render /etc/nginx/templates/*.template into $NGINX_ENVSUBST_OUTPUT_DIR (default conf.d),
# substituting only variables that are set, so nginx's own $variables stay (as the official image).
set -e
template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
filter=${NGINX_ENVSUBST_FILTER:-}
[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
  echo "$0: ERROR: $template_dir exists, but $output_dir is not writable" >&2
  exit 1
fi
defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" < /dev/null))
find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
  relative_path=${template#"$template_dir/"}
  output_path=$output_dir/${relative_path%"$suffix"}
  mkdir -p "$(dirname "$output_path")"
  envsubst "$defined_envs" < "$template" > "$output_path"
done
