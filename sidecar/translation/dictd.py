"""Reader of dictd dictionaries (``.index`` + ``.dict.dz``), as FreeDict ships them in Debian.

Index lines are ``headword<TAB>offset<TAB>length`` with offset and length in base64 digits;
``.dict.dz`` is dictzip: gzip with a chunk table, so one entry is read by inflating only the
chunk(s) that hold it instead of the whole (up to 100 MB) text."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

_B64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def b64_number(digits: str) -> int:
    value = 0
    for c in digits:
        value = value * 64 + _B64[c]
    return value


class DictzipFile:
    """Random access to a dictzip file; falls back to inflating it whole when the file is a
    plain gzip (no chunk table)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._whole: bytes | None = None
        self._chunks: list[tuple[int, int]] = []
        self._chunk_len = 0
        with self.path.open("rb") as fh:
            head = fh.read(10)
            if head[:2] != b"\x1f\x8b":
                raise ValueError(f"{path}: not a gzip file")
            flags = head[3]
            pos = 10
            if flags & 4:
                (xlen,) = struct.unpack("<H", fh.read(2))
                extra = fh.read(xlen)
                pos += 2 + xlen
                self._parse_extra(extra)
            if flags & 8:
                pos += self._skip_zstring(fh)
            if flags & 16:
                pos += self._skip_zstring(fh)
            if flags & 2:
                fh.read(2)
                pos += 2
        if self._chunk_len:
            start = pos
            sizes = self._chunks_sizes
            self._chunks = []
            for size in sizes:
                self._chunks.append((start, size))
                start += size
        else:
            import gzip

            self._whole = gzip.decompress(self.path.read_bytes())

    @staticmethod
    def _skip_zstring(fh: object) -> int:
        n = 0
        while True:
            b = fh.read(1)  # type: ignore[attr-defined]
            n += 1
            if not b or b == b"\x00":
                return n

    def _parse_extra(self, extra: bytes) -> None:
        i = 0
        self._chunks_sizes: list[int] = []
        while i + 4 <= len(extra):
            si, length = extra[i : i + 2], struct.unpack("<H", extra[i + 2 : i + 4])[0]
            body = extra[i + 4 : i + 4 + length]
            if si == b"RA" and len(body) >= 6:
                _ver, chlen, chcnt = struct.unpack("<HHH", body[:6])
                self._chunk_len = chlen
                self._chunks_sizes = list(struct.unpack(f"<{chcnt}H", body[6 : 6 + 2 * chcnt]))
            i += 4 + length

    def read(self, offset: int, length: int) -> bytes:
        if self._whole is not None:
            return self._whole[offset : offset + length]
        first, last = offset // self._chunk_len, (offset + length - 1) // self._chunk_len
        parts = []
        with self._lock, self.path.open("rb") as fh:
            for c in range(first, min(last, len(self._chunks) - 1) + 1):
                start, size = self._chunks[c]
                fh.seek(start)
                parts.append(zlib.decompressobj(-15).decompress(fh.read(size)))
        blob = b"".join(parts)
        skip = offset - first * self._chunk_len
        return blob[skip : skip + length]


class DictdDictionary:
    """Headword (lower-cased) -> raw entry texts. The index loads whole (a dict of offsets),
    entries are read on demand."""

    def __init__(self, index: str | Path, data: str | Path, max_words: int = 1):
        self.index_path, self.data_path = Path(index), Path(data)
        self._data = DictzipFile(self.data_path)
        #: lower-cased headword -> "offset<TAB>length" (several joined by newlines); the
        #: base64 numbers are decoded on lookup, which keeps loading fast
        self._index: dict[str, str] = {}
        index_map = self._index
        with self.index_path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                head, _, rest = line.rstrip("\n").partition("\t")
                if not rest or not head or head.count(" ") >= max_words:
                    continue
                key = head.lower()
                old = index_map.get(key)
                index_map[key] = rest if old is None else old + "\n" + rest
        index_map.pop("00databaseinfo", None)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self._index

    def __len__(self) -> int:
        return len(self._index)

    def entries(self, word: str) -> list[str]:
        raw = self._index.get(word.lower())
        if raw is None:
            return []
        out = []
        for pair in raw.split("\n"):
            off, _, length = pair.partition("\t")
            try:
                blob = self._data.read(b64_number(off), b64_number(length.strip()))
            except (KeyError, ValueError, OSError, zlib.error):
                continue
            out.append(blob.decode("utf-8", errors="replace"))
        return out
