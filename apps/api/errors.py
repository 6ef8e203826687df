"""Errors in the shape OpenAI's API uses, so its clients raise the right exception:
``{"error": {"message", "type", "param", "code"}}`` with the matching HTTP status
(401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 429
RateLimitError, 400 BadRequestError, 503 InternalServerError)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An answer that is an error: raised anywhere below a view, turned into JSON once."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {
            "message": self.message,
            "type": TYPES.get(self.status, "api_error"),
            "param": self.param,
            "code": self.code,
        }
        if self.extra:
            body["enclave"] = self.extra
        response = JsonResponse({"error": body}, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="enclave"'
        return response


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)
