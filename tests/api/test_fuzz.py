"""Bad input at scale: schemathesis against the sidecar's own OpenAPI document.

Thousands of generated requests (valid and invalid) go through the real app and the real
bundled model; every response must be documented, match its schema, and none may be a
5xx. Limits are set low so generated inputs stay cheap to score."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from sidecar.app import create_app
from sidecar.settings import Settings

EXAMPLES = 700  # per operation and generation mode


class Counting:
    """WSGI middleware: counts responses by status class."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: Counter[int] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def record(status: str, headers: Any, exc_info: Any = None) -> Any:
            self.statuses[int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, record)


APP = create_app(
    Settings(max_documents=8, max_document_chars=400, max_query_chars=200, max_embed_inputs=8,
             max_queue_pairs=64, request_timeout_s=20)
)
APP.extensions["sidecar.engine"].wait_ready(120)
COUNTING = Counting(APP.wsgi_app)
APP.wsgi_app = COUNTING  # type: ignore[method-assign]
# 413 is how this API rejects sizes over the configured limits (documented in the schema),
# so it counts as a rejection of schema-violating data; 5xx never does.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {
        "expected-statuses": [400, 401, 404, 405, 406, 413, 415, 422, 429]}}}
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    total = sum(COUNTING.statuses.values())
    five = sum(n for s, n in COUNTING.statuses.items() if s >= 500)
    print(f"\n[fuzz] {total} requests; by status {dict(sorted(COUNTING.statuses.items()))}; "
          f"5xx: {five}")
    assert five == 0


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
def test_openapi_contract_holds_for_generated_requests(case: Any) -> None:
    case.call_and_validate()


def test_the_fuzz_run_was_large() -> None:
    assert sum(COUNTING.statuses.values()) >= 1000
