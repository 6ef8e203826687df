"""SCIM's error shape (RFC 7644 §3.12): a status, an optional `scimType`, a detail."""

from __future__ import annotations

from django.http import JsonResponse

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    def __init__(self, status: int, detail: str, *, scim_type: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def response(self) -> JsonResponse:
        body: dict[str, object] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        response = JsonResponse(body, status=self.status, content_type=CONTENT_TYPE)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="enclave-scim"'
        return response


def invalid(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type=scim_type)


def not_found(kind: str, ident: str) -> ScimError:
    return ScimError(404, f"No {kind} with id {ident[:64]!r}.")
