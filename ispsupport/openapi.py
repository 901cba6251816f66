"""The API's errors in its OpenAPI schema (drf-spectacular).

Every error the API answers has the same body, made by
``ispsupport.api.exception_handler``: ``{"detail", "code", ...}``. Views
declare the successes and the errors only they answer (``CONFLICT`` where a
service may refuse the change now); ``document_errors``, a postprocessing hook
(SPECTACULAR_SETTINGS), adds those every operation of its shape answers and
gives each error response that shared body:

- 400 when the operation reads a body or parameters;
- 401 and 403 when it needs a signed-in user (a public one lists ``{}`` in its
  security);
- 404 when its path names a row, or it pages (a page or cursor past the end);
- 401 on the public operations that check credentials sent in their body;
- 429 on every operation the API's rate limit (API_RATE_LIMIT, per user or per
  client IP) or the login limit applies to: all but the token refresh.
"""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.utils import OpenApiResponse

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The body of every error the API answers.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "code": {
            "type": "string",
            "description": "What went wrong, for a program: invalid, not_authenticated, "
            "permission_denied, not_found, invalid_transition, ...",
        },
        "errors": {
            "description": "With code invalid: the messages of each field that was refused, "
            'by field name ({"text": ["..."]}); a list when they name no field.',
        },
    },
    "required": ["detail", "code"],
    # Some errors add their own keys (the seconds to wait of a 429...).
    "additionalProperties": True,
}

# Descriptions are schema text for integrators, not customer text: English, as
# the rest of the schema.
DESCRIPTIONS = {
    "400": "The request is invalid: a parameter or a field (see errors).",
    "401": "Not signed in: no token, or an expired or revoked one.",
    "403": "Signed in, but this user's role may not do this.",
    "404": "No such row, or not one this user may see.",
    "409": "Valid, but not allowed in the current state (code says why).",
    "429": "Too many requests: wait the seconds the Retry-After header gives.",
    "503": "A service this depends on is not answering; try again shortly.",
}
WRONG_CREDENTIALS = "The credentials sent are wrong, expired or revoked."

# For a view's own extend_schema(responses={...}): a service may refuse the change now.
CONFLICT = OpenApiResponse(description=DESCRIPTIONS["409"])
UNAVAILABLE = OpenApiResponse(description=DESCRIPTIONS["503"])

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# DRF's paginators answer 404 for a page past the end or a cursor they did not make.
_PAGING = {"page", "cursor"}
# Public, but wrong credentials in the body are a 401 (accounts/auth.py).
_CHECKS_CREDENTIALS = {
    "api_v1_auth_login_create",
    "api_v1_auth_logout_create",
    "api_v1_auth_refresh_create",
}
# Views with throttle_classes = [] and no limiter of their own (accounts/auth.py).
_NOT_RATE_LIMITED = {"api_v1_auth_refresh_create"}


def errors_of(path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses any operation of this shape may answer."""
    statuses = set()
    if "requestBody" in operation or operation.get("parameters"):
        statuses.add("400")
    if {} not in operation.get("security", [{}]):
        statuses |= {"401", "403"}
    if "{" in path or _PAGING & {p.get("name") for p in operation.get("parameters", [])}:
        statuses.add("404")
    if _checks_credentials(operation):
        statuses.add("401")
    if operation.get("operationId") not in _NOT_RATE_LIMITED:
        statuses.add("429")
    return statuses


def _checks_credentials(operation: dict[str, Any]) -> bool:
    return operation.get("operationId") in _CHECKS_CREDENTIALS


def document_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Postprocessing hook: the errors each operation answers, with their body."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_COMPONENT] = copy.deepcopy(ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if _checks_credentials(operation):
                responses.setdefault("401", {"description": WRONG_CREDENTIALS})
            for status in errors_of(path, operation):
                responses.setdefault(status, {"description": ""})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    _as_error(status, response)
            operation["responses"] = dict(sorted(responses.items()))
    return result


def _as_error(status: str, response: dict[str, Any]) -> None:
    # A view's own words about its error win; the body is always the shared one.
    if not response.get("description"):
        response["description"] = DESCRIPTIONS.get(status, "Error.")
    response.setdefault("content", {"application/json": {"schema": dict(ERROR_REF)}})
