"""One JSON error envelope and a closed set of codes, each with a fixed HTTP status.

Every error the service returns looks like
``{"error": {"code": "...", "message": "...", "param": "field" | null}}``.
A 500 never carries ``str(exc)`` or a traceback: those go to the log.
"""

from __future__ import annotations

import logging
from typing import Final

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

#: code -> HTTP status. Closed: ``ApiError`` refuses any other code.
ERROR_CODES: Final[dict[str, int]] = {
    "invalid_json": 400,
    "empty_input": 400,
    "unauthorized": 401,
    "not_found": 404,
    "model_not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "overloaded": 429,
    "internal_error": 500,
    "backend_error": 502,
    "backend_unavailable": 503,
    "timeout": 504,
}


class ApiError(Exception):
    """An error answered to the client in the envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return ERROR_CODES[self.code]

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"code": self.code, "message": self.message, "param": self.param}}


def error_response(err: ApiError) -> Response:
    resp = jsonify(err.to_dict())
    resp.status_code = err.status
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, round(err.retry_after)))
    return resp


_HTTP_TO_CODE: Final[dict[int, str]] = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_TO_CODE.get(status)
        if code is None:
            code = "internal_error" if status >= 500 else "validation_error"
        message = {
            404: "no such route",
            405: "method not allowed on this route",
            413: "request body is larger than SIDECAR_MAX_BODY_BYTES",
        }.get(status, exc.description or exc.name)
        resp = error_response(ApiError(code, message))
        if status == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(ApiError("internal_error", "internal error; see the sidecar log"))
