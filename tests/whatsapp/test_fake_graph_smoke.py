from __future__ import annotations

import httpx

from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import WhatsAppAccount


def test_the_fake_answers_a_send_and_records_it(fake_graph: FakeGraph) -> None:
    response = httpx.post(f"{fake_graph.url}/v24.0/123/messages", json={"to": "5511988887777"})

    assert response.json()["messages"][0]["id"] == "wamid.FAKE00000001"
    [sent] = fake_graph.sent()
    assert sent.json == {"to": "5511988887777"}


def test_secrets_are_encrypted_at_rest(account: WhatsAppAccount) -> None:
    account.refresh_from_db()
    assert "EAAG" not in account.access_token_encrypted
    assert account.access_token == "EAAG-test-access-token"
    assert not account.is_sandbox
