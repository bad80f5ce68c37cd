# Sourced by router/bench/run.sh and router/bench/instructions.sh: the tools both need, and nginx's configuration,
# so that both measure the same nginx.

# need_tools OHA TOOLS: installs oha (into TOOLS, the user's cache, never the repo) and nginx-light when missing.
need_tools() {
  [ -x "$1" ] || nice -n 19 cargo install oha --locked --root "$2"
  if ! command -v nginx >/dev/null; then
    echo "installing nginx-light (apt-get)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light; } >&2 ||
      { echo "nginx is missing and apt-get could not install nginx-light" >&2; exit 1; }
  fi
}

# nginx_conf WORK UPSTREAM_PORT HTTP1_PORT H2C_PORT [MAIN_DIRECTIVES]: writes WORK/nginx.conf (one worker, in the
# foreground, upstream keep-alive, HTTP/1.1 to the upstream) with its temporary folders under WORK/nginx.
nginx_conf() {
  local work=$1 upstream=$2 http1=$3 h2c=$4 main=${5:-}
  mkdir -p "$work/nginx"
  cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
$main
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a client or upstream connection after 1,000 requests by default; the routers never do.
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream model { server 127.0.0.1:$upstream; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$http1;
    listen 127.0.0.1:$h2c http2;
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
}
