"""API keys for the scoring and embedding routes: ``Authorization: Bearer <key>``.

Keys come from ``SIDECAR_API_KEYS`` (comma-separated) and/or ``SIDECAR_API_KEYS_FILE``
(one key per line, ``#`` comments). The file is re-read when it changes, so keys rotate
without a restart: add the new key, move the clients (the ML Commons connector's
credential), remove the old one. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def parse_keys(text: str, sep: str = "\n") -> frozenset[str]:
    keys = set()
    for part in text.split(sep):
        key = part.split("#", 1)[0].strip() if sep == "\n" else part.strip()
        if key:
            keys.add(key)
    return frozenset(keys)


class ApiKeys:
    def __init__(self, inline: str = "", path: str = "") -> None:
        self._inline = parse_keys(inline, ",")
        self._path = Path(path) if path else None
        self._file_keys: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        if self._path is not None:
            if not self._path.is_file():
                raise FileNotFoundError(f"SIDECAR_API_KEYS_FILE={self._path}: no such file")
            self._reload()

    @property
    def enabled(self) -> bool:
        return bool(self._inline) or self._path is not None

    def _reload(self) -> None:
        assert self._path is not None
        try:
            st = os.stat(self._path)
        except OSError:
            log.error("API key file %s is unreadable; keeping the last keys", self._path)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            try:
                text = self._path.read_text(encoding="utf-8")
            except OSError:
                log.error("API key file %s is unreadable; keeping the last keys", self._path)
                return
            self._file_keys = parse_keys(text)
            self._stamp = stamp
            log.info("loaded %d API key(s) from %s", len(self._file_keys), self._path)

    def keys(self) -> frozenset[str]:
        if self._path is not None:
            self._reload()
        return self._inline | self._file_keys

    def check(self, authorization: str | None) -> bool:
        """True when the header carries a valid key (every key compared, in constant time)."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        given = authorization[len("Bearer ") :].strip().encode("utf-8")
        ok = False
        for key in self.keys():
            ok |= hmac.compare_digest(given, key.encode("utf-8"))
        return ok
