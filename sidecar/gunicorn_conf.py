"""gunicorn settings, from the same ``SIDECAR_*`` variables as the app.

One worker process holds one copy of each model; its threads accept requests and the
micro-batcher merges their work, so on a CPU host 1 worker x 32 threads uses the
cores best (torch already uses every core for one batch). Add workers only with
memory and cores (or GPUs) to spare: each loads its own models. Never ``preload_app``:
models must load after the fork.
"""

import os
import re

from sidecar.settings import Settings

_s = Settings.from_env()

bind = f"{_s.host}:{_s.port}"
workers = _s.workers
worker_class = "gthread"
threads = _s.threads
preload_app = False
# A worker busy in a long batch still answers heartbeats from other threads; the
# timeout only has to cover start-up plus the slowest request.
timeout = int(max(120, _s.request_timeout_s * 2, _s.load_timeout_s))
graceful_timeout = 30
keepalive = 75
if _s.tls_certfile:
    certfile = _s.tls_certfile
    keyfile = _s.tls_keyfile
# gunicorn >= 25.1 opens a control socket (for gunicornc) at one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl): a second sidecar took it
# over, and stopping either removed it. One per instance instead, named for its address, in
# the same folder (older gunicorns ignore the setting).
control_socket = os.path.join(
    os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".gunicorn"),
    "ranking-sidecar-" + re.sub(r"[^A-Za-z0-9.-]", "_", f"{_s.host}-{_s.port}") + ".ctl",
)
accesslog = "-"
errorlog = "-"
loglevel = "info"
