#!/bin/sh
# nginx has no environment templating of its own: render the port and upstream, then run in front.
set -eu
sed -e "s|__PORT__|${PORT:-8080}|" -e "s|__MODEL_SERVER_URL__|${MODEL_SERVER_URL:-http://127.0.0.1:8000}|" \
  /etc/penguins/nginx.conf > /tmp/nginx.conf
exec nginx -c /tmp/nginx.conf -g 'daemon off;'
