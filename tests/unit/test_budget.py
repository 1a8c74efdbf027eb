"""The one time budget (cluster_setup.budget) and what sidecar-setup renders from it."""

from __future__ import annotations

import math

import pytest

from cluster_setup import budget
from cluster_setup.bodies import load_body
from cluster_setup.cli import build_parser
from sidecar.settings import Settings


@pytest.mark.parametrize("b", [7.5, 8, 10, 12.5, 20, 22, 30, 60])
def test_sidecar_deadline_below_read_timeout_below_search_budget(b: float) -> None:
    got = budget.derive(b)
    assert 0 < got.sidecar_deadline_s < got.read_timeout_s
    # two ML calls that both time out (connect and read) still answer within the budget
    calls = budget.ML_CALLS * (got.connect_timeout_s + got.read_timeout_s)
    assert calls + budget.SEARCH_MARGIN_S <= b
    # and past the pool's acquire wait too, once the budget leaves room for two of them
    if b >= budget.ML_CALLS * budget.POOL_ACQUIRE_TIMEOUT_S + budget.SEARCH_MARGIN_S:
        assert got.worst_search_s <= b
    assert got.one_call_search_timeout_s < b
    assert isinstance(got.read_timeout_s, int) and isinstance(got.connect_timeout_s, int)
    cfg = got.client_config()
    assert cfg["max_retry_times"] == 0
    assert cfg["read_timeout"] == got.read_timeout_s  # whole seconds, as ML Commons reads it


def test_the_recipe_numbers_of_the_findings() -> None:
    """10 s for a client: connectors 1 s / 3 s, sidecar 1.5 s (measured in issue 15)."""
    got = budget.derive(10)
    assert (got.connect_timeout_s, got.read_timeout_s, got.sidecar_deadline_s) == (1, 3, 1.5)


def test_the_default_keeps_todays_cpu_rerank() -> None:
    """hybrid+rerank on the CPU: p99 7.3 s at concurrency 4 (relevance-2.19.1-lgbm-v1 report)."""
    got = budget.DEFAULT
    assert got.sidecar_deadline_s >= 7.3
    assert got.read_timeout_s < budget.POOL_ACQUIRE_TIMEOUT_S
    # a refused port can hold each call for the pool's 10 s acquire: the default holds anyway
    assert got.worst_search_s <= got.search_budget_s


@pytest.mark.parametrize("b", [8, 10, 20, 22, 23.5, 40])
def test_pool_rule(b: float) -> None:
    got = budget.derive(b)
    c = got.max_concurrency
    assert c % got.max_connection == 0
    if c:
        assert math.ceil(c / 32) * got.read_timeout_s < budget.POOL_ACQUIRE_TIMEOUT_S
    assert math.ceil((c + 1) / 32) * got.read_timeout_s >= budget.POOL_ACQUIRE_TIMEOUT_S


@pytest.mark.parametrize("b", [0, 3, 5.5, 7.4, float("nan")])
def test_too_small_a_budget_is_refused(b: float) -> None:
    with pytest.raises(ValueError):
        budget.derive(b)


def test_the_templates_and_the_sidecar_carry_the_default_budget() -> None:
    """A connector loaded straight from index_templates/ (tests, docs) has the default's
    timeouts."""
    for role in ("rerank", "embed"):
        cfg = load_body(f"connector.{role}.json")["client_config"]
        assert cfg == budget.DEFAULT.client_config(), role
        assert (
            budget.apply(load_body(f"connector.{role}.json"), budget.derive(10))["client_config"][
                "read_timeout"
            ]
            == 3
        )
    # the sidecar's own default also bounds ingest batches; the search-serving sidecar runs
    # with the budget's deadline (sidecar-setup prints it)
    assert Settings().request_timeout_s >= budget.DEFAULT.sidecar_deadline_s
    assert build_parser().parse_args([]).budget == budget.DEFAULT_SEARCH_BUDGET_S
