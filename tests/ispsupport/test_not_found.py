"""An address that matches no route: JSON under /api/, Django's page elsewhere."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.parametrize(
    "path",
    ["/api/v1/whatsapp/no-such-thing", "/api/v1/no-such-thing/", "/api/v2/conversations/"],
)
def test_an_unknown_api_address_answers_the_apis_json_error(client: Client, path: str) -> None:
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_the_json_error_speaks_portuguese_by_default(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing/")

    assert response.json() == {"detail": "Não encontrado.", "code": "not_found"}


def test_outside_the_api_it_stays_a_page(client: Client) -> None:
    response = client.get("/console-typo/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
