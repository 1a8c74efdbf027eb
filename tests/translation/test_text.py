from sidecar.translation.text import catalog_tokens, clean, match_key, query_tokens, units


def test_model_numbers_and_brands_survive_the_catalog_tokeniser() -> None:
    toks = catalog_tokens("Brother TN-2110 toner, HP 301XL; StarTech.com USB-C M185 802.11ac.")
    assert {"tn-2110", "301xl", "startech.com", "usb-c", "m185", "802.11ac", "hp"} <= set(toks)


def test_query_tokens_split_scripts() -> None:
    toks = query_tokens("iPhone 11手机壳 (黑色)")
    assert [(t.text, t.kind) for t in toks] == [
        ("iPhone", "latin"),
        ("11", "latin"),
        ("手机壳", "cjk"),
        ("黑色", "cjk"),
    ]
    assert [t.text for t in query_tokens("ワイヤレスマウス")] == ["ワイヤレスマウス"]


def test_clean_removes_control_characters_and_normalises_width() -> None:
    assert clean("ｉＰｈｏｎｅ\x00\x1b[31m  ケース\u200b\n", 100) == "iPhone [31m ケース"
    assert clean("a" * 500, 10) == "a" * 10
    assert clean("\ud800x", 10) == "x"  # a lone surrogate


def test_match_key_is_the_same_for_inflected_forms() -> None:
    assert match_key("cargadores", "es") == match_key("cargador", "es")
    assert match_key("Ratón", "es") == match_key("ratones", "es")
    assert match_key("câbles", "fr") == match_key("câble", "fr")
    assert match_key("noire", "fr") == match_key("noir", "fr")
    assert match_key("Tastaturen", "de") == match_key("Tastatur", "de")
    assert match_key("kabellose", "de") == match_key("kabellos", "de")


def test_units_are_characters_for_cjk_and_words_otherwise() -> None:
    assert [u.key for u in units("USBメモリ", "ja")] == ["usb", "メ", "モ", "リ"]
    assert [u.key for u in units("usb メモリ", "ja")] == ["usb", "メ", "モ", "リ"]
