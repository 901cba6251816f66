"""Schemathesis against the API's own OpenAPI schema (drf-spectacular, /api/v1/schema/).

In process, no network: the schema is read from the Django app, and every
generated request goes through Django's WSGI handler, so the whole stack runs
(middleware, authentication, DRF, serializers, services) on the test database.

For every operation in the schema: a few schema-valid (positive) and
schema-breaking (negative) requests, as an admin with a fresh JWT. Each request
runs in a savepoint that is rolled back, with the cache (rate-limit counters,
cached rows) emptied first: a case that deactivates the admin, changes their
password or creates a user leaves nothing behind for the next one, and a
failure replays the same way. Path ids are drawn half the time from rows that
exist, so operations reach their real work rather than a 404.

Checks on every response:
- no 5xx;
- the status is documented, or is one of the generic errors every operation may
  answer (405, 415) with the project's error body ``{"detail", "code", ...}``;
  the schema documents the others where they apply
  (``test_the_schema_documents_its_errors``);
- a documented response's content type, headers and body match the schema;
- an operation that requires authentication refuses a request without it.

Not checked: that schema-breaking input is always refused (Schemathesis's
``negative_data_rejection``). The API ignores an empty filter (``?assignee=``)
by design, and the fresh Authorization header and real ids put on each case
undo some of the breakage Schemathesis made, so that check reports noise.

Bounded: ``MAX_EXAMPLES`` per operation and mode, no shrinking (a failure is
reported with its curl command as found): ~520 requests, about 20-25 s.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
)

import tests.property  # noqa: F401 - the Hypothesis profile, before any test is built
from accounts.models import Team, User
from conversations.models import CannedReply, Inbox
from conversations.services import message_receive, message_send, note_create
from tests.property import scaled
from tests.support import bearer

SCHEMA_URL = "/api/v1/schema/?format=json"
MAX_EXAMPLES = scaled(5)

# What any operation may answer without documenting it: the project's error
# handler gives each the same body (ispsupport.api.exception_handler). The
# others (400, 401, 403, 404, 409, 429) are documented where they apply
# (ispsupport/openapi.py), and checked against the schema like any answer.
GENERIC_ERRORS = {405, 415}


# --- Checks -----------------------------------------------------------------------


def documented_or_generic_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every status is documented, or a generic error with the project's error body."""
    documented = set(case.operation.definition.raw.get("responses", {}))
    status = response.status_code
    if str(status) in documented or "default" in documented:
        return None
    assert status in GENERIC_ERRORS, f"undocumented status {status}"
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{status} without a JSON body: {response.content[:200]!r}") from None
    assert isinstance(body, dict) and {"detail", "code"} <= set(body), f"error body {body!r}"
    return None


def matches_no_url(response: Any) -> bool:
    """A path parameter of another shape (/conversations/abc/) matches no URL
    pattern: Django's own 404 page answers, before DRF is reached."""
    try:
        resolve(urlsplit(response.request.url).path)
    except Resolver404:
        return True
    return False


CHECKS = [
    not_a_server_error,
    documented_or_generic_error,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


# --- Fixtures -----------------------------------------------------------------------


class InProcessApp:
    """Django's WSGI handler, minus the connection closing around each request
    (as Django's test client does it): the test's transaction lives on this
    thread's connection, and closing it would end the test's transaction. The
    body is read before returning, so that request_finished fires in here too."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


def served_schema() -> dict[str, Any]:
    response = Client().get(SCHEMA_URL)
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


@pytest.fixture
def api(db: None) -> Any:
    raw = copy.deepcopy(served_schema())
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = InProcessApp()
    return schema


@pytest.fixture
def existing(admin: User, settings: Any) -> dict[str, list[Any]]:
    """A few rows of each kind, made by the services; path ids are drawn from these."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # ~600 requests in a minute: the API's per-user limit would answer 429s.
    settings.API_RATE_LIMIT = "100000/m"
    support = Team.objects.create(name="Suporte técnico")
    agent = User.objects.create_user(username="bruno", password="Senha-Forte-123")
    agent.teams.set([support])
    inbox = Inbox.objects.create(name="WhatsApp", default_team=support)
    first = message_receive(
        inbox=inbox, wa_id="5511988887777", text="Minha internet caiu", external_id="wamid.F1"
    ).message
    conversation = first.conversation
    reply = message_send(conversation=conversation, text="Olá!", actor=agent).message
    note_create(conversation=conversation, author=agent, text="Cliente desde 2019")
    canned = CannedReply.objects.create(shortcut="oi", title="Oi", text="Olá!", created_by=admin)
    return {
        "id": [conversation.pk, conversation.contact_id, support.pk, agent.pk, admin.pk, canned.pk],
        "message_id": [first.pk, reply.pk],
        "user_id": [agent.pk, admin.pk],
        "name": ["whatsapp", "database", "gemini", "redis"],
    }


def _forget_cached_counts() -> None:
    """Rate-limit counters and cached rows outlive a rolled-back savepoint."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")  # only this project's prefixed keys
    else:
        cache.clear()


# --- Tests --------------------------------------------------------------------------


def test_the_api_answers_as_its_schema_says(
    api: Any, admin: User, existing: dict[str, list[Any]]
) -> None:
    failures: list[str] = []
    cases = 0
    started = time.monotonic()
    for result in api.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            def run(case: Any, data: st.DataObject) -> None:
                nonlocal cases
                cases += 1
                for name in case.path_parameters or {}:
                    if name in existing and data.draw(st.booleans(), label=f"real {name}"):
                        case.path_parameters[name] = data.draw(st.sampled_from(existing[name]))
                headers = {
                    **bearer(admin),
                    "Accept-Language": "en",
                    # GZipMiddleware would answer bytes Schemathesis does not inflate.
                    "Accept-Encoding": "identity",
                }
                with transaction.atomic():
                    try:
                        _forget_cached_counts()
                        response = case.call(headers=headers)
                        if matches_no_url(response):
                            # Not the API's answer: nothing of its schema applies.
                            assert response.status_code == 404, response.status_code
                        else:
                            case.validate_response(response, checks=CHECKS, headers=headers)
                    finally:
                        transaction.set_rollback(True)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing in this operation can be made schema-breaking
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode}]: {exc}")
    elapsed = time.monotonic() - started
    print(f"schemathesis: {cases} requests in {elapsed:.1f} s")
    assert not failures, "\n\n".join(failures)


def test_a_team_filter_beyond_64_bits_is_refused(client: Client, admin: User) -> None:
    # Found by the test above: an OverflowError (500) on SQLite before it was checked.
    response = client.get(
        f"/api/v1/conversations/?team={2**63}", headers={**bearer(admin), "Accept-Language": "en"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "errors": {"team": ["Ensure this value is less than or equal to 9223372036854775807."]},
    }


def test_the_schema_says_what_the_api_answers(db: None) -> None:
    # Mismatches found by the test above, each once corrected in a copy of the schema.
    schema = served_schema()
    components = schema["components"]["schemas"]
    for name in ("Conversation", "ConversationDetail"):
        # null once someone answered.
        assert components[name]["properties"]["waiting_seconds"]["nullable"] is True
    # Users are created without an e-mail: it reads as "", which is no e-mail address.
    assert "format" not in components["User"]["properties"]["email"]
    remove_member = schema["paths"]["/api/v1/teams/{id}/members/{user_id}/"]["delete"]
    team = {"$ref": "#/components/schemas/Team"}
    assert remove_member["responses"]["200"]["content"]["application/json"]["schema"] == team
    assert "204" not in remove_member["responses"]


def test_the_schema_documents_its_errors(db: None) -> None:
    missing = []
    for path, operations in served_schema()["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            documented = set(operation.get("responses", {}))
            needed = set()
            if {} not in operation.get("security", [{}]):
                needed |= {"401", "403"}
            if "{" in path:
                needed.add("404")
            if "requestBody" in operation or operation.get("parameters"):
                needed.add("400")
            # The API's rate limit (or the login limit) applies to all but the refresh.
            if operation.get("operationId") != "api_v1_auth_refresh_create":
                needed.add("429")
            if needed - documented:
                missing.append(f"{method.upper()} {path}: {sorted(needed - documented)}")
            for status, response in operation.get("responses", {}).items():
                body = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("4") and body != {"$ref": "#/components/schemas/Error"}:
                    missing.append(f"{method.upper()} {path}: {status} without the error body")
    assert not missing, "\n".join(missing)
