"""What every API blueprint shares: strict JSON parsing into a pydantic model, the
engine of this app, and mapping engine failures to the envelope."""

from __future__ import annotations

from typing import TypeVar

from flask import Flask, Response, current_app, g, request
from pydantic import BaseModel, ValidationError

from sidecar.backends.base import BackendError, InputTooLong
from sidecar.engine import Engine, NotReady
from sidecar.errors import ERROR_CODES, ApiError, error_response
from sidecar.schemas import NON_BLANK_PATTERN
from sidecar.scoring.batcher import DeadlineExceeded, Overloaded
from sidecar.settings import Settings

M = TypeVar("M", bound=BaseModel)


def engine() -> Engine:
    eng: Engine = current_app.extensions["sidecar.engine"]
    return eng


def settings() -> Settings:
    s: Settings = current_app.extensions["sidecar.settings"]
    return s


def loc_to_param(loc: tuple[int | str, ...]) -> str | None:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or None


def parse_json(model: type[M]) -> M:
    """Parse the body as ``model``; every failure names the field when there is one."""
    if request.mimetype != "application/json":
        raise ApiError(
            "unsupported_media_type",
            f"Content-Type must be application/json, not {request.mimetype or 'missing'}",
        )
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError("unsupported_media_type", f"charset must be utf-8, not {charset}")
    raw = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        raise ApiError("invalid_json", "request body is empty; send a JSON object")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            "invalid_json", f"request body is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return ApiError("invalid_json", f"malformed JSON: {first['msg']}")
    loc = tuple(first["loc"])
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return ApiError("validation_error", "request body must be a JSON object")
    param = loc_to_param(loc)
    ctx = first.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") != NON_BLANK_PATTERN:
        return ApiError("validation_error", f"{param}: {first['msg']}", param)
    if kind in ("string_too_short", "string_pattern_mismatch", "too_short") and param:
        what = "is empty" if kind != "too_short" else "is empty; send at least one"
        return ApiError("empty_input", f"{param} {what}", param)
    message = first["msg"]
    if "index" in ctx and param:  # our own per-item errors already name the item
        return ApiError("validation_error", message, f"{param}[{ctx['index']}]")
    return ApiError("validation_error", f"{param}: {message}" if param else message, param)


#: engine exceptions -> the envelope's code (whose HTTP status sidecar.errors fixes)
ENGINE_ERROR_CODES: dict[type[Exception], str] = {
    InputTooLong: "payload_too_large",
    Overloaded: "overloaded",
    DeadlineExceeded: "timeout",
    NotReady: "backend_unavailable",
    BackendError: "backend_error",
}


def status_of(exc: Exception) -> int:
    """The HTTP status of the answer to a request that raised ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status
    for kind, code in ENGINE_ERROR_CODES.items():
        if isinstance(exc, kind):
            return ERROR_CODES[code]
    return ERROR_CODES["internal_error"]


def register_engine_errors(app: Flask) -> None:
    """Engine exceptions -> envelope; ``g.items_field`` names the list a bad item is in."""

    @app.errorhandler(InputTooLong)
    def _too_long(exc: InputTooLong) -> Response:
        field = g.get("items_field", "input")
        return error_response(
            ApiError(
                ENGINE_ERROR_CODES[InputTooLong],
                f"{field}[{exc.index}] is {exc.length} tokens with its query and template; "
                f"the limit is {exc.limit} (send truncate=true to cut the document)",
                f"{field}[{exc.index}]",
            )
        )

    @app.errorhandler(Overloaded)
    def _overloaded(exc: Overloaded) -> Response:
        return error_response(
            ApiError(
                ENGINE_ERROR_CODES[Overloaded],
                "the model queue is full; retry later",
                retry_after=exc.retry_after,
            )
        )

    @app.errorhandler(DeadlineExceeded)
    def _deadline(exc: DeadlineExceeded) -> Response:
        return error_response(
            ApiError(
                ENGINE_ERROR_CODES[DeadlineExceeded],
                f"not answered within SIDECAR_REQUEST_TIMEOUT_S={settings().request_timeout_s:g}s",
            )
        )

    @app.errorhandler(NotReady)
    def _not_ready(exc: NotReady) -> Response:
        return error_response(
            ApiError(ENGINE_ERROR_CODES[NotReady], str(exc), retry_after=exc.retry_after)
        )

    @app.errorhandler(BackendError)
    def _backend(exc: BackendError) -> Response:
        return error_response(ApiError(ENGINE_ERROR_CODES[BackendError], f"model error: {exc}"))
