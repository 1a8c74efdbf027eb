"""``sidecar-serve``: run the service under gunicorn with the project's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    app = "sidecar.app:create_app()"
    if "--app" in args:  # another factory, e.g. one that wraps the backends (tests)
        i = args.index("--app")
        app = args[i + 1]
        del args[i : i + 2]
    from sidecar.settings import Settings

    Settings.from_env()  # fail fast, before gunicorn forks, on a bad SIDECAR_* value
    conf = os.path.join(os.path.dirname(__file__), "gunicorn_conf.py")
    cmd = [sys.executable, "-m", "gunicorn", "-c", conf, *args, app]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
