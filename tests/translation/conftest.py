from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.lexicons import TableLexicon
from sidecar.translation.vocabulary import Vocabulary, build_vocabulary

CHORUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "chorus_icecat"

#: a hand-written English mini catalog: enough words for sense choice to have an opinion
CATALOG = [
    "Logitech M185 wireless mouse, grey",
    "Logitech MX Keys wireless keyboard",
    "HP 301 black ink cartridge",
    "Brother TN-2110 toner cartridge, black",
    "Anker PowerCore power bank 10000 mAh",
    "Belkin USB-C wall charger 20 W",
    "Apple iPhone 11 silicone case",
    "Sony WH-1000XM4 wireless headphones with noise cancelling",
    "JBL Tune 110 in-ear earphones",
    "Samsung 27 inch curved monitor",
    "Canon PIXMA inkjet printer",
    "Epson printer cartridge multipack",
    "SanDisk Ultra 64 GB microSD memory card",
    "Kingston DataTraveler 32 GB USB flash drive",
    "Lenovo ThinkPad laptop 14 inch",
    "TP-Link wireless router AC1200",
    "Bose bluetooth speaker portable",
    "StarTech.com HDMI cable 2 m",
    "Garmin smartwatch with GPS",
    "Nikon digital camera with lens",
]
BRANDS = ["Logitech", "HP", "Brother", "Anker", "Belkin", "Apple", "Sony", "JBL", "Samsung",
          "Canon", "Epson", "SanDisk", "Kingston", "Lenovo", "TP-Link", "Bose", "StarTech.com",
          "Garmin", "Nikon"]  # fmt: skip


@pytest.fixture(scope="session")
def vocab() -> Vocabulary:
    return build_vocabulary(CATALOG, brands=BRANDS)


@pytest.fixture
def toy_zh() -> TableLexicon:
    return TableLexicon(
        "toy-zh",
        {
            "无线": ["wireless"],
            "无线电": ["radio"],
            "鼠标": ["mouse (computing)"],
            "充电器": ["charger"],
            "移动": ["to move", "movement", "mobile"],
            "电源": ["electric power source"],
            "的": ["possessive particle"],
            "壳": ["shell", "carapace"],
        },
    )


@pytest.fixture
def toy_translator(vocab: Vocabulary, toy_zh: TableLexicon) -> Iterator[DictionaryTranslator]:
    toy_es = TableLexicon(
        "toy-es",
        {
            "cargador": ["carrier", "loader", "charger"],
            "ratón": ["rat", "mouse"],
            "inalámbrico": ["wireless"],
            "funda": ["it founds", "case"],
        },
    )
    glossary = Glossary([("zh", "移动电源", "power bank"), ("es", "funda", "phone case")])
    tr = DictionaryTranslator(
        vocab,
        glossary=glossary,
        neighbours=False,
        lexicons={"zh": toy_zh, "es": toy_es, "ja": None, "fr": None, "de": None},
    )
    yield tr
    tr.close()
