from sidecar.translation.senses import choose_sense, clean_gloss, score_glosses
from sidecar.translation.vocabulary import build_vocabulary


def test_clean_gloss() -> None:
    assert clean_gloss("to move") == "move"
    assert clean_gloss("(n) (2) (computer) mouse") == "mouse"
    assert clean_gloss("mouse (computing)") == "mouse"
    assert clean_gloss("CL:個|个[ge4]") is None
    assert clean_gloss("variant of 鼠[shu3]") is None
    assert clean_gloss("a pair of headphones") == "headphones"


def test_the_catalog_decides_among_senses() -> None:
    vocab = build_vocabulary(["usb charger", "wall charger", "power bank", "wireless mouse"])
    assert choose_sense(["carrier", "loader", "charger"], vocab).text == "charger"  # type: ignore[union-attr]
    sense = choose_sense(["to move", "movement", "mobile", "wireless"], vocab)
    assert sense is not None and sense.text == "wireless"
    assert choose_sense(["rat", "mouse"], vocab).text == "mouse"  # type: ignore[union-attr]


def test_short_glosses_win_and_absent_words_are_dropped() -> None:
    vocab = build_vocabulary(["portable charger", "power bank", "charger"])
    best = score_glosses(["portable battery charger", "charger"], vocab)[0]
    assert best.text == "charger"
    partial = choose_sense(["mobile power pack"], vocab)
    assert partial is not None and partial.text == "power" and partial.coverage < 1


def test_no_catalog_word_no_sense() -> None:
    vocab = build_vocabulary(["usb cable"])
    assert choose_sense(["selenium drum"], vocab) is None
    assert choose_sense([], vocab) is None
