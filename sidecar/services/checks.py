"""Input checks both services share; each failure names the field it is about."""

from __future__ import annotations

from collections.abc import Iterable

from sidecar.errors import ApiError


def check_text_limit(value: str, limit: int, param: str) -> None:
    if len(value) > limit:
        raise ApiError(
            "payload_too_large",
            f"{param} has {len(value)} characters; the limit is {limit}",
            param,
        )


def check_model(requested: str | None, served: Iterable[str]) -> None:
    """A request may name the served model (any of its names) or ``default``."""
    names = {"default", *served} - {""}
    if requested and requested not in names:
        raise ApiError(
            "model_not_found",
            f"model {requested!r} is not served here; use one of {sorted(names)}",
            "model",
        )


def check_count(items: int, limit: int, field: str, variable: str) -> None:
    if items > limit:
        raise ApiError(
            "payload_too_large",
            f"{field} has {items} items; the limit is {variable}={limit}",
            field,
        )
