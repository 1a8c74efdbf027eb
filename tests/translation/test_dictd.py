import gzip
import struct
import zlib
from pathlib import Path

import pytest

from sidecar.translation.dictd import DictdDictionary, DictzipFile, b64_number
from sidecar.translation.lexicons import DICTD_DIR, freedict, parse_freedict_entry

_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(n: int) -> str:
    out = ""
    while True:
        out = _DIGITS[n % 64] + out
        n //= 64
        if not n:
            return out


def write_dictzip(path: Path, data: bytes, chunk: int = 16) -> None:
    """A minimal dictzip writer: gzip with an RA chunk table, chunks fully flushed."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    blobs = []
    for i in range(0, len(data), chunk):
        blobs.append(comp.compress(data[i : i + chunk]) + comp.flush(zlib.Z_FULL_FLUSH))
    blobs[-1] += comp.flush(zlib.Z_FINISH)
    body = struct.pack("<HHH", 1, chunk, len(blobs)) + struct.pack(
        f"<{len(blobs)}H", *map(len, blobs)
    )
    extra = b"RA" + struct.pack("<H", len(body)) + body
    header = b"\x1f\x8b\x08\x04" + b"\x00" * 4 + b"\x02\x03" + struct.pack("<H", len(extra)) + extra
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    path.write_bytes(header + b"".join(blobs) + trailer)


ENTRIES = [
    ("Maus", 'Maus /maʊs/ <fem, n, sg>\nmouse <n>, computer mouse <n>\n      "ein Beispiel" - x\n'),
    ("Tastatur", "Tastatur <fem>\n [comp.] keyboard <n>, keys <n>\n see: {Tastaturen}\n"),
    ("abblitzen lassen", "abblitzen lassen\nto snub sb.\n"),
]


def make_dictionary(tmp: Path, dictzip: bool) -> DictdDictionary:
    data, index = b"", []
    for head, body in ENTRIES:
        raw = body.encode("utf-8")
        index.append(f"{head}\t{b64(len(data))}\t{b64(len(raw))}")
        data += raw
    (tmp / "x.index").write_text(
        "00databaseinfo\tA\tB\n" + "\n".join(index) + "\n", encoding="utf-8"
    )
    if dictzip:
        write_dictzip(tmp / "x.dict.dz", data)
    else:
        (tmp / "x.dict.dz").write_bytes(gzip.compress(data))
    return DictdDictionary(tmp / "x.index", tmp / "x.dict.dz")


def test_base64_numbers() -> None:
    assert b64_number("A") == 0 and b64_number("BA") == 64 and b64_number(b64(123456)) == 123456


@pytest.mark.parametrize("dictzip", [True, False])
def test_entries_by_random_access(tmp_path: Path, dictzip: bool) -> None:
    d = make_dictionary(tmp_path, dictzip)
    assert ("Maus" in d) and ("maus" in d) and ("abblitzen lassen" not in d)  # one-word heads
    assert d.entries("TASTATUR") == [ENTRIES[1][1]]
    assert d.entries("nope") == []
    assert parse_freedict_entry(d.entries("maus")[0]) == ["mouse", "computer mouse"]
    assert parse_freedict_entry(d.entries("tastatur")[0]) == ["keyboard", "keys"]
    z = DictzipFile(tmp_path / "x.dict.dz")
    assert z.read(5, 40) == b"".join(e[1].encode() for e in ENTRIES)[5:45]


def test_installed_deu_eng() -> None:
    if not (DICTD_DIR / "freedict-deu-eng.index").exists():
        pytest.skip("Debian package dict-freedict-deu-eng is not installed")
    lex = freedict("deu-eng")
    assert "keyboard" in lex.glosses("tastatur")
    assert "printer cartridge" in lex.glosses("druckerpatrone")
