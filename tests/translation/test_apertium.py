import shutil
import time
from collections.abc import Iterator

import pytest

from sidecar.translation.lexicons import APERTIUM_DIR, ApertiumLexicon, _NullFlushPipe


def test_a_null_flush_pipe_answers_and_survives_a_hang() -> None:
    cat = _NullFlushPipe(["cat"], timeout=2)
    assert cat.ask("hola") == "hola"
    assert cat.ask("adiós") == "adiós"
    cat.close()
    hang = _NullFlushPipe(["sleep", "30"], timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        hang.ask("x")
    assert time.monotonic() - t0 < 2
    hang.close()


def test_a_dead_process_is_restarted() -> None:
    pipe = _NullFlushPipe(["cat"], timeout=2)
    assert pipe.ask("a") == "a"
    assert pipe._proc is not None
    pipe._proc.kill()
    pipe._proc.wait()
    assert pipe.ask("b") == "b"  # poll() saw it dead: a new one
    pipe.close()


@pytest.fixture(scope="module")
def apertium() -> Iterator[ApertiumLexicon]:
    if shutil.which("lt-proc") is None or not (APERTIUM_DIR / "spa-eng.automorf.bin").exists():
        pytest.skip("Debian packages apertium-eng-spa / lttoolbox are not installed")
    lex = ApertiumLexicon()
    yield lex
    lex.close()


def test_apertium_analyses_and_translates_words(apertium: ApertiumLexicon) -> None:
    got = apertium.glosses_many(["ratones", "inalámbricos", "teclado", "impresora", "xqzw"])
    assert "mouse" in got[0] and "wireless" in got[1]
    assert "keyboard" in got[2] and "printer" in got[3] and got[4] == []


def test_apertium_is_never_fed_its_own_syntax(apertium: ApertiumLexicon) -> None:
    assert apertium.glosses_many(["^a/b$", "<n>", "x\0y", "\\", "ratón"])[-1] == ["mouse"]
