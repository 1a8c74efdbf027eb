from pathlib import Path

import pytest

from sidecar.translation.glossary import DEFAULT_GLOSSARY, Glossary
from sidecar.translation.text import units


def match(g: Glossary, lang: str, text: str, start: int = 0) -> tuple[int, str] | None:
    return g.match(lang, units(text, lang), start)


def test_longest_entry_wins_and_inflections_match() -> None:
    g = Glossary(
        [("es", "disco duro", "hard drive"), ("es", "disco duro externo", "external hard drive")]
    )
    assert match(g, "es", "Discos duros externos 2tb") == (3, "external hard drive")
    assert match(g, "es", "disco duro") == (2, "hard drive")
    assert match(g, "es", "disco") is None


def test_function_words_inside_a_term_are_optional() -> None:
    g = Glossary([("es", "funda para móvil", "phone case"), ("es", "con cable", "wired")])
    assert match(g, "es", "funda movil") == (2, "phone case")
    assert match(g, "es", "funda de móvil") == (3, "phone case")
    assert match(g, "es", "con cable") == (2, "wired")
    assert match(g, "es", "cable") is None


def test_cjk_terms_match_across_scripts() -> None:
    g = Glossary([("ja", "USBメモリ", "usb flash drive"), ("zh", "U盘", "usb flash drive")])
    assert match(g, "ja", "usb メモリ 32gb") == (4, "usb flash drive")
    assert match(g, "zh", "u盘") == (2, "usb flash drive")


def test_files_layer_and_bad_rows_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    extra = tmp_path / "mine.tsv"
    extra.write_text("# mine\nde\tMaus\tcomputer mouse\nbad row\nde\t\tx\n", encoding="utf-8")
    g = Glossary.load([DEFAULT_GLOSSARY, extra])
    assert match(g, "de", "Maus") == (1, "computer mouse")
    assert "mine.tsv:3" in caplog.text and "mine.tsv:4" in caplog.text


def test_the_shipped_glossary_covers_every_language() -> None:
    counts = Glossary.load().languages()
    assert set(counts) == {"zh", "ja", "es", "fr", "de"}
    assert all(n >= 100 for n in counts.values())
    rows = [line.split("\t") for line in DEFAULT_GLOSSARY.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]  # fmt: skip
    assert all(len(r) == 3 and r[2] == r[2].lower() for r in rows)
