"""nginx answering `return 200` on every path: what the HTTP layer alone costs in C.

Runs the system nginx (Debian nginx-light) in the foreground, as the current user, with a config
and every runtime path in a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.harness import HOST, Proc

NGINX = os.environ.get("BENCH_NGINX", "/usr/sbin/nginx")

CONFIG = """\
daemon off;
master_process on;
# One worker, like the one collector process it is compared with.
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    client_max_body_size 1m;
    server {{
        listen {host}:{port} reuseport;
        location / {{
            default_type application/json;
            return 200 '{{"success":true}}';
        }}
    }}
}}
"""


def nginx(workdir: Path, port: int, workers: int = 1) -> Proc:
    directory = workdir / "nginx"
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(CONFIG.format(dir=directory, host=HOST, port=port, workers=workers))
    # -e: the error log before the config is read (the compiled-in default is under /var/log).
    argv = [NGINX, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
    return Proc("nginx", argv, directory / "stdout.log")
