from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import MessageTemplate, WhatsAppAccount
from whatsapp.templates import SyncResult, TemplateSyncError, template_variables, templates_sync

WABA = "102290129340398"


def _template(
    name: str, *, status: str = "APPROVED", body: str = "Olá {{1}}", **extra: Any
) -> dict:
    return {
        "name": name,
        "language": extra.pop("language", "pt_BR"),
        "category": extra.pop("category", "UTILITY"),
        "status": status,
        "id": extra.pop("id", f"id-{name}"),
        "components": extra.pop("components", [{"type": "BODY", "text": body}]),
    }


@pytest.fixture
def two_pages(fake_graph: FakeGraph, settings: Any) -> Callable[[list[dict], list[dict]], None]:
    path = f"/{settings.WHATSAPP_API_VERSION}/{WABA}/message_templates"

    def script(first: list[dict], second: list[dict]) -> None:
        fake_graph.reply(
            "GET",
            path,
            {
                "data": first,
                "paging": {
                    "cursors": {"before": "QVFIUb", "after": "QVFIUpage2"},
                    "next": f"{fake_graph.url}{path}?limit=100&after=QVFIUpage2",
                },
            },
        )
        fake_graph.reply(
            "GET", path, {"data": second, "paging": {"cursors": {"before": "x", "after": "y"}}}
        )

    return script


def test_sync_creates_updates_and_removes_over_two_pages(
    account: WhatsAppAccount, fake_graph: FakeGraph, two_pages: Callable[..., None], settings: Any
) -> None:
    old = timezone.now() - timedelta(days=1)
    MessageTemplate.objects.create(
        account=account, name="fatura", language="pt_BR", status="PENDING", synced_at=old
    )
    MessageTemplate.objects.create(
        account=account, name="removido", language="pt_BR", status="APPROVED", synced_at=old
    )
    two_pages(
        [_template("fatura", body="Sua fatura de {{1}} vence em {{2}}")],
        [_template("boas_vindas"), _template("boas_vindas", language="en_US")],
    )

    result = templates_sync(account=account)

    assert result == SyncResult(created=2, updated=1, removed=1)
    rows = {(t.name, t.language): t for t in MessageTemplate.objects.filter(account=account)}
    assert set(rows) == {("fatura", "pt_BR"), ("boas_vindas", "pt_BR"), ("boas_vindas", "en_US")}
    fatura = rows[("fatura", "pt_BR")]
    assert fatura.status == "APPROVED"
    assert fatura.category == "UTILITY"
    assert fatura.external_id == "id-fatura"
    assert fatura.components == [{"type": "BODY", "text": "Sua fatura de {{1}} vence em {{2}}"}]
    assert fatura.synced_at > old
    first, second = [r for r in fake_graph.requests if r.path.endswith("/message_templates")]
    assert first.path == f"/{settings.WHATSAPP_API_VERSION}/{WABA}/message_templates"
    assert first.headers["authorization"] == "Bearer EAAG-test-access-token"
    assert "after" not in first.query
    assert second.query["after"] == ["QVFIUpage2"]
    assert second.headers["authorization"] == "Bearer EAAG-test-access-token"


def test_a_second_sync_with_nothing_new_changes_nothing(
    account: WhatsAppAccount, two_pages: Callable[..., None]
) -> None:
    two_pages([_template("fatura")], [])
    templates_sync(account=account)
    two_pages([_template("fatura")], [])

    assert templates_sync(account=account) == SyncResult(created=0, updated=0, removed=0)


def test_a_failing_page_deletes_nothing(
    account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    MessageTemplate.objects.create(
        account=account,
        name="fatura",
        language="pt_BR",
        status="APPROVED",
        synced_at=timezone.now(),
    )
    path = f"/{settings.WHATSAPP_API_VERSION}/{WABA}/message_templates"
    fake_graph.reply(
        "GET",
        path,
        {
            "data": [],
            "paging": {"cursors": {"after": "p2"}, "next": f"{fake_graph.url}{path}?after=p2"},
        },
    )
    fake_graph.fail("GET", path, code=100, message="(#100) Invalid parameter")

    with pytest.raises(TemplateSyncError) as raised:
        templates_sync(account=account)

    assert raised.value.code == "graph_error"
    assert MessageTemplate.objects.filter(account=account).count() == 1


def test_the_sandbox_has_nothing_to_sync(
    sandbox_account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    with pytest.raises(TemplateSyncError) as raised:
        templates_sync(account=sandbox_account)

    assert raised.value.code == "sandbox"
    assert "sandbox" in raised.value.message
    assert fake_graph.requests == []


def test_command_prints_a_summary(account: WhatsAppAccount, two_pages: Callable[..., None]) -> None:
    two_pages([_template("fatura")], [_template("aviso")])
    out = StringIO()

    call_command("sync_templates", "--account", account.phone_number_id, stdout=out)

    assert out.getvalue().splitlines()[-1] == (
        "Templates: 2 created, 0 updated, 0 removed on 1 number(s); 0 skipped."
    )
    assert MessageTemplate.objects.count() == 2


def test_command_on_the_sandbox_says_why(sandbox_account: WhatsAppAccount) -> None:
    err = StringIO()

    with pytest.raises(CommandError, match="No number could be synced"):
        call_command("sync_templates", stdout=StringIO(), stderr=err)

    assert "sandbox mode" in err.getvalue()


def test_command_with_an_unknown_number(db: None) -> None:
    with pytest.raises(CommandError, match="No WhatsApp number with phone number id 999"):
        call_command("sync_templates", "--account", "999", stdout=StringIO())


def test_variables_per_component(account: WhatsAppAccount) -> None:
    template = MessageTemplate(
        account=account,
        name="fatura",
        language="pt_BR",
        status="APPROVED",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Fatura de {{1}}"},
            {"type": "BODY", "text": "Olá {{1}}, o valor é {{2}} e vence {{3}}. {{1}}!"},
            {"type": "FOOTER", "text": "Provedor {{ignored}}"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Falar com atendente"},
                    {"type": "URL", "text": "Pagar", "url": "https://isp.example/pay/{{1}}"},
                    {"type": "COPY_CODE", "example": "PIX123"},
                ],
            },
        ],
    )

    assert template_variables(template) == {
        "header": {"format": "text", "variables": ["1"]},
        "body": {"variables": ["1", "2", "3"]},
        "buttons": [
            {"index": 1, "type": "url", "variables": ["1"]},
            {"index": 2, "type": "copy_code", "variables": ["coupon_code"]},
        ],
    }


def test_variables_of_a_media_header_and_named_parameters(account: WhatsAppAccount) -> None:
    template = MessageTemplate(
        account=account,
        name="boleto",
        language="pt_BR",
        status="APPROVED",
        components=[
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Olá {{nome}}, segue o boleto de {{ mes }}."},
        ],
    )

    assert template_variables(template) == {
        "header": {"format": "document", "variables": []},
        "body": {"variables": ["nome", "mes"]},
        "buttons": [],
    }
