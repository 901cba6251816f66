"""message_processing_seconds: from the webhook's receipt to the commit, once
per stored message; duplicates and refused deliveries observe nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from tests.whatsapp.payloads import contact, envelope, post, text
from whatsapp.models import WhatsAppAccount


def observed() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("message_processing_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("message_processing_seconds_sum") or 0.0
    return count, total


# The histogram is observed when the ingest commits: this test really commits.
@pytest.mark.django_db(transaction=True)
def test_each_stored_message_is_observed_once(account: WhatsAppAccount) -> None:
    client = Client()
    batch = envelope(
        messages=[
            text("Minha internet caiu"),
            text("Sem sinal", from_="5521977776666", from_user_id="BR.2"),
        ],
        contacts=[contact(), contact(wa_id="5521977776666", user_id="BR.2", name="João")],
    )
    count_before, sum_before = observed()

    assert post(client, batch).status_code == 200
    count_after, sum_after = observed()
    assert post(client, batch).status_code == 200  # Meta's redelivery
    assert post(client, batch, signature="sha256=" + "0" * 64).status_code == 403

    assert count_after - count_before == 2
    assert 0 < sum_after - sum_before < 10
    assert observed()[0] == count_after
