"""gunicorn settings, from the same ``SIDECAR_*`` variables as the app.

One worker process holds one copy of each model; its threads accept requests and the
micro-batcher merges their work, so on a CPU host 1 worker x 32 threads uses the
cores best (torch already uses every core for one batch). Add workers only with
memory and cores (or GPUs) to spare: each loads its own models. Never ``preload_app``:
models must load after the fork.
"""

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
accesslog = "-"
errorlog = "-"
loglevel = "info"
