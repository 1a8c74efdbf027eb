"""The rerank instruction chosen per query language (SIDECAR_RERANK_INSTRUCTIONS)."""

import json

import pytest

from sidecar.scoring.prompts import instruction_for
from sidecar.settings import DEFAULT_RERANK_INSTRUCTION, Settings, SettingsError

TABLE = {
    "zh": "Given a web search query in {language}, retrieve relevant English product pages",
    "*": "Given a {language} web search query, retrieve relevant product pages",
}


def instruction(s: Settings, language: str | None) -> str:
    """The instruction these settings give a query in ``language``."""
    return instruction_for(language, dict(s.rerank_instructions), s.default_instruction)


def test_default_is_the_official_instruction_for_every_language() -> None:
    s = Settings()
    for lang in ("en", "zh", "es", "ja", "fr", "de", None):
        assert instruction(s, lang) == DEFAULT_RERANK_INSTRUCTION


def test_inline_table_with_language_names_and_a_catch_all() -> None:
    s = Settings.from_env({"SIDECAR_RERANK_INSTRUCTIONS": json.dumps(TABLE)})
    assert instruction(s, "zh") == (
        "Given a web search query in Chinese, retrieve relevant English product pages"
    )
    assert (
        instruction(s, "ja") == "Given a Japanese web search query, retrieve relevant product pages"
    )
    assert "an unknown language" in instruction(s, None)


def test_table_from_a_file_and_without_catch_all(tmp_path) -> None:
    path = tmp_path / "instructions.json"
    path.write_text(json.dumps({"DE": "Suche: {language}"}), encoding="utf-8")
    s = Settings(rerank_instructions=str(path))
    assert instruction(s, "de") == "Suche: German"
    assert instruction(s, "fr") == DEFAULT_RERANK_INSTRUCTION


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "not valid JSON"),
        ('["zh"]', "object of language codes"),
        ('{"zh": ""}', "object of language codes"),
        ("/nonexistent/instructions.json", "cannot read"),
    ],
)
def test_bad_tables_fail_at_start_with_a_clear_message(value, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(rerank_instructions=value)


@pytest.mark.settings(rerank_instructions=json.dumps(TABLE), cache_size=0)
def test_the_route_scores_with_the_instruction_of_the_query_language(wrapped_app) -> None:
    client, reranker = wrapped_app
    docs = ["Logitech wireless mouse", "HP toner"]
    for query, lang, name in [
        ("无线鼠标", "zh", "Chinese"),
        ("ratón inalámbrico", "es", "Spanish"),
    ]:
        reranker.instructions.clear()
        body = client.post("/v1/rerank", json={"query": query, "documents": docs}).get_json()
        assert body["meta"]["query_language"] == lang
        assert set(reranker.instructions) == {
            TABLE.get(lang, TABLE["*"]).replace("{language}", name)
        }
    # the request's own instruction wins; the TEI route chooses the same way
    reranker.instructions.clear()
    client.post("/v1/rerank", json={"query": "无线鼠标", "documents": docs, "instruction": "mine"})
    assert set(reranker.instructions) == {"mine"}
    reranker.instructions.clear()
    client.post("/rerank", json={"query": "souris sans fil", "texts": docs})
    assert set(reranker.instructions) == {TABLE["*"].replace("{language}", "French")}


def test_without_a_table_the_engine_default_applies(wrapped_app) -> None:
    client, reranker = wrapped_app
    reranker.instructions.clear()
    body = client.post("/v1/rerank", json={"query": "无线鼠标", "documents": ["x"]}).get_json()
    assert body["meta"]["query_language"] == "zh"
    assert set(reranker.instructions) == {DEFAULT_RERANK_INSTRUCTION}
