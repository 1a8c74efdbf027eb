"""The Cohere rerank blends the model's scores with the documents' incoming (recall) order
when the caller says they come in that order (``in_recall_order``, as the project's
connector does): by SIDECAR_RERANK_RECALL_WEIGHT (auto: the tuned weight for the bundled
model), or at ``recall_weight`` per request. Other callers get the model's scores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from sidecar.scoring.blend import TUNED_RECALL_WEIGHT, blend_with_recall
from sidecar.services.rerank import default_recall_weight as recall_weight
from sidecar.settings import Settings, SettingsError
from tests.conftest import make_client


@pytest.fixture(scope="module")
def client() -> Iterator[FlaskClient]:
    """The bundled e5 cosine reranker (the blend's weight was tuned for it)."""
    app, test_client = make_client(Settings(rerank_backend="embedding"))
    yield test_client
    app.extensions["sidecar.engine"].close()


DOCS = ["HP toner cartridge", "Logitech wireless mouse", "Dell USB keyboard", "mouse pad"]


def scores(client: FlaskClient, **extra: object) -> tuple[list[float], dict]:
    r = client.post("/v1/rerank", json={"query": "wireless mouse", "documents": DOCS, **extra})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    by_index = {x["index"]: x["relevance_score"] for x in body["results"]}
    return [by_index[i] for i in range(len(DOCS))], body["meta"]


def test_documents_in_recall_order_blend_with_it_by_the_setting(client) -> None:
    model, meta0 = scores(client)
    assert "recall_weight" not in meta0  # a plain request: the model's own scores
    assert model == scores(client, recall_weight=0.0)[0]
    blended, meta = scores(client, in_recall_order=True)
    default = recall_weight(Settings(rerank_backend="embedding"))
    assert meta["recall_weight"] == TUNED_RECALL_WEIGHT == default
    assert blended == pytest.approx(blend_with_recall(model, TUNED_RECALL_WEIGHT))
    assert max(range(4), key=lambda i: blended[i]) == 1  # the mouse still wins


def test_per_request_weight_and_the_tei_route_is_untouched(client) -> None:
    kept, meta = scores(client, recall_weight=1.0)
    assert kept == sorted(kept, reverse=True) and meta["recall_weight"] == 1.0
    tei = client.post("/rerank", json={"query": "wireless mouse", "texts": DOCS}).get_json()
    model, _ = scores(client, in_recall_order=True, recall_weight=0.0)
    assert {x["index"]: x["score"] for x in tei} == pytest.approx(dict(enumerate(model)))


def test_weight_out_of_range_is_a_validation_error(client) -> None:
    r = client.post("/v1/rerank", json={"query": "q", "documents": ["a"], "recall_weight": 1.5})
    assert r.status_code == 422
    assert r.get_json()["error"]["param"] == "recall_weight"


def test_setting_auto_is_off_for_cross_encoders_and_validated() -> None:
    assert recall_weight(Settings(rerank_model="/models/ce")) == 0.0  # transformers backend
    assert recall_weight(Settings(rerank_backend="learned")) == 0.0  # position is a feature
    assert recall_weight(Settings(rerank_recall_weight="0.35")) == 0.35
    assert recall_weight(Settings.from_env({"SIDECAR_RERANK_RECALL_WEIGHT": "0"})) == 0.0
    for bad in ("1.5", "-0.1", "much"):
        with pytest.raises(SettingsError, match="SIDECAR_RERANK_RECALL_WEIGHT"):
            Settings(rerank_recall_weight=bad)


@pytest.mark.settings(rerank_recall_weight="0")
def test_setting_zero_returns_the_models_scores(wrapped_app) -> None:
    client, _ = wrapped_app
    plain, meta = scores(client, in_recall_order=True)
    assert "recall_weight" not in meta
    assert plain == pytest.approx(scores(client)[0])


def test_scores_stay_short_enough_for_ml_commons(client) -> None:
    # json-smart reads a number of more than 18 characters as a BigDecimal, which ML Commons'
    # Cohere post-process cannot cast to Double: the whole rerank would be dropped
    docs = [f"mouse model {i}" for i in range(7)]
    for extra in ({"in_recall_order": True}, {"recall_weight": 1.0}, {}):
        r = client.post("/v1/rerank", json={"query": "mouse", "documents": docs, **extra})
        raw = r.get_data(as_text=True)
        numbers = [t.split(",")[0].split("}")[0] for t in raw.split('"relevance_score":')[1:]]
        assert len(numbers) == 7 and all(len(n) <= 18 and "." in n for n in numbers), numbers
