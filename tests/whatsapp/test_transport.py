"""The Graph API client against the fake Graph API over real HTTP: request
shapes, error mapping, the breaker, timeouts, media and templates."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from ispsupport.breakers import get_breaker
from ispsupport.cache import invalidate
from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp import metrics, transport
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import SandboxTransport
from whatsapp.transport import GraphTransport, Recipient, TransportError, transport_for

MARIA = Recipient(wa_id="5511988887777")


def messages_path() -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{PHONE_NUMBER_ID}/messages"


def envelope(to: dict[str, str], kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **to,
        "type": kind,
        kind: content,
    }


@pytest.fixture
def graph(account: WhatsAppAccount, fake_graph: FakeGraph) -> GraphTransport:
    return transport_for(account)


def only_send(fake: FakeGraph) -> dict[str, Any]:
    [sent] = fake.sent()
    assert sent.path == messages_path()
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    return sent.json


def calls(endpoint: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "whatsapp_api_calls_total", {"endpoint": endpoint, "outcome": outcome}
    )
    return value or 0.0


# --- Request shapes -----------------------------------------------------------------


def test_transport_for_a_live_number_is_the_graph_api(
    account: WhatsAppAccount, sandbox_account: WhatsAppAccount
) -> None:
    account.access_token = "EAAG-other"
    assert type(transport_for(account)) is GraphTransport
    assert type(transport_for(WhatsAppAccount(phone_number_id="1"))) is SandboxTransport


def test_text(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    result = graph.send_text(MARIA, "Olá, Maria! Sua conexão foi normalizada.")

    assert result.message_id == "wamid.FAKE00000001"
    assert only_send(fake_graph) == envelope(
        {"to": "5511988887777"},
        "text",
        {"preview_url": False, "body": "Olá, Maria! Sua conexão foi normalizada."},
    )


def test_text_as_a_reply_carries_the_context(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    graph.send_text(MARIA, "Sim", reply_to="wamid.IN0001")

    assert only_send(fake_graph)["context"] == {"message_id": "wamid.IN0001"}


def test_a_bsuid_only_contact_is_sent_to_as_recipient(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    graph.send_text(Recipient(bsuid="BR.1502576394655843"), "Oi")

    body = only_send(fake_graph)
    assert body == envelope(
        {"recipient": "BR.1502576394655843"}, "text", {"preview_url": False, "body": "Oi"}
    )
    assert "to" not in body


def test_the_phone_wins_over_the_bsuid_when_both_are_known(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    graph.send_text(Recipient(wa_id="5511988887777", bsuid="BR.1502576394655843"), "Oi")

    body = only_send(fake_graph)
    assert body["to"] == "5511988887777"
    assert "recipient" not in body


def test_template(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    components = [
        {"type": "body", "parameters": [{"type": "text", "text": "Maria"}]},
    ]
    graph.send_template(MARIA, name="fatura_disponivel", language="pt_BR", components=components)

    assert only_send(fake_graph) == envelope(
        {"to": "5511988887777"},
        "template",
        {"name": "fatura_disponivel", "language": {"code": "pt_BR"}, "components": components},
    )


def test_buttons(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    graph.send_buttons(
        MARIA,
        "Sua internet voltou?",
        [("sim", "Sim"), ("nao", "Não")],
        header="Suporte",
        footer="Provedor Exemplo",
    )

    assert only_send(fake_graph) == envelope(
        {"to": "5511988887777"},
        "interactive",
        {
            "type": "button",
            "header": {"type": "text", "text": "Suporte"},
            "body": {"text": "Sua internet voltou?"},
            "footer": {"text": "Provedor Exemplo"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "sim", "title": "Sim"}},
                    {"type": "reply", "reply": {"id": "nao", "title": "Não"}},
                ]
            },
        },
    )


def test_more_than_three_buttons_is_refused_before_any_request(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    with pytest.raises(TransportError) as caught:
        graph.send_buttons(MARIA, "Escolha", [(str(i), f"Opção {i}") for i in range(4)])

    assert caught.value.code == "invalid_payload"
    assert caught.value.retryable is False
    assert fake_graph.requests == []


def test_list(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    sections = [
        {
            "title": "Financeiro",
            "rows": [
                {"id": "segunda_via", "title": "2ª via", "description": "Boleto ou Pix"},
                {"id": "desbloqueio", "title": "Desbloqueio"},
            ],
        }
    ]
    graph.send_list(MARIA, "Como podemos ajudar?", "Ver opções", sections)

    assert only_send(fake_graph) == envelope(
        {"to": "5511988887777"},
        "interactive",
        {
            "type": "list",
            "body": {"text": "Como podemos ajudar?"},
            "action": {
                "button": "Ver opções",
                "sections": [
                    {
                        "title": "Financeiro",
                        "rows": [
                            {
                                "id": "segunda_via",
                                "title": "2ª via",
                                "description": "Boleto ou Pix",
                            },
                            {"id": "desbloqueio", "title": "Desbloqueio"},
                        ],
                    }
                ],
            },
        },
    )


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        (
            "image",
            {"media_id": "1013", "caption": "Roteador"},
            {"id": "1013", "caption": "Roteador"},
        ),
        (
            "document",
            {"link": "https://exemplo.com.br/fatura.pdf", "caption": "Fatura", "filename": "f.pdf"},
            {"link": "https://exemplo.com.br/fatura.pdf", "caption": "Fatura", "filename": "f.pdf"},
        ),
        ("audio", {"media_id": "2020", "caption": "ignored"}, {"id": "2020"}),
        (
            "video",
            {"link": "https://exemplo.com.br/v.mp4"},
            {"link": "https://exemplo.com.br/v.mp4"},
        ),
        ("sticker", {"media_id": "3030"}, {"id": "3030"}),
    ],
)
def test_media(
    graph: GraphTransport,
    fake_graph: FakeGraph,
    kind: str,
    kwargs: dict[str, str],
    expected: dict[str, str],
) -> None:
    graph.send_media(MARIA, kind, **kwargs)

    assert only_send(fake_graph) == envelope({"to": "5511988887777"}, kind, expected)


def test_media_needs_exactly_one_of_id_or_link(graph: GraphTransport) -> None:
    with pytest.raises(TransportError, match="exactly one"):
        graph.send_media(MARIA, "image", media_id="1", link="https://exemplo.com.br/a.jpg")


def test_reaction(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    graph.send_reaction(MARIA, "wamid.IN0001", "👍")

    assert only_send(fake_graph) == envelope(
        {"to": "5511988887777"}, "reaction", {"message_id": "wamid.IN0001", "emoji": "👍"}
    )


def test_mark_read(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    fake_graph.reply("POST", messages_path(), {"success": True})

    graph.mark_read("wamid.IN0001")

    assert only_send(fake_graph) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN0001",
    }


# --- Error mapping --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "retryable", "scope"),
    [
        (1, 400, True, "service"),
        (2, 503, True, "service"),
        (4, 400, True, "account"),
        (80007, 400, True, "account"),
        (130429, 400, True, "account"),
        (131056, 400, True, "recipient"),
        (131057, 400, True, "account"),
        (131000, 500, True, "service"),
        (131047, 400, False, "recipient"),
        (131026, 400, False, "recipient"),
        (131048, 400, False, "account"),
        (131049, 400, False, "recipient"),
        (131051, 400, False, "request"),
        (131009, 400, False, "request"),
        (100, 400, False, "request"),
        (368, 403, False, "account"),
        (190, 401, False, "account"),
        (99999, 400, False, "request"),
    ],
)
def test_meta_errors_are_typed(
    graph: GraphTransport,
    fake_graph: FakeGraph,
    code: int,
    status: int,
    retryable: bool,
    scope: str,
) -> None:
    fake_graph.fail(
        "POST", messages_path(), code=code, status=status, message=f"(#{code}) Erro", details="d"
    )
    outcome = "retryable" if retryable else "permanent"
    before = calls("send.text", outcome)

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    error = caught.value
    assert (error.code, error.http_status, error.retryable, error.scope) == (
        code,
        status,
        retryable,
        scope,
    )
    assert error.title == f"(#{code}) Erro"
    assert error.detail == "d"
    assert calls("send.text", outcome) == before + 1


def test_rate_limits_are_counted(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    def rate_limits() -> float:
        return REGISTRY.get_sample_value("whatsapp_rate_limits_total", {"code": "130429"}) or 0.0

    before = rate_limits()
    fake_graph.fail("POST", messages_path(), code=130429)

    with pytest.raises(TransportError):
        graph.send_text(MARIA, "Oi")

    assert rate_limits() == before + 1


def test_the_agent_sees_a_short_reason() -> None:
    from django.utils import translation

    error = transport.error_from_response(400, {"error": {"code": 131047, "message": "Re-engage"}})
    with translation.override("en"):
        assert error.agent_title == (
            "More than 24 hours since the customer's last message: send a template."
        )


def test_a_5xx_without_a_graph_error_is_retryable(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.reply("POST", messages_path(), b"<html>Bad gateway</html>", status=502)

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "http",
        502,
        True,
    )


def test_a_timeout_is_retryable(
    graph: GraphTransport, fake_graph: FakeGraph, settings: Any
) -> None:
    settings.WHATSAPP_API_TIMEOUT = 0.2
    fake_graph.reply("POST", messages_path(), {"messages": [{"id": "late"}]}, delay=1.0)

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    assert caught.value.code == "timeout"
    assert caught.value.retryable is True


def test_a_refused_connection_is_retryable(account: WhatsAppAccount, settings: Any) -> None:
    settings.WHATSAPP_API_BASE_URL = "http://127.0.0.1:9"  # discard port: nobody listens

    with pytest.raises(TransportError) as caught:
        transport_for(account).send_text(MARIA, "Oi")

    assert caught.value.code == "connection"
    assert caught.value.retryable is True


# --- The breaker ----------------------------------------------------------------------


def test_the_breaker_opens_after_three_failures_and_recovers_half_open(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.fail("POST", messages_path(), code=131000, status=500, times=3)
    breaker = get_breaker("whatsapp")

    for _ in range(3):
        with pytest.raises(TransportError) as caught:
            graph.send_text(MARIA, "Oi")
        assert caught.value.code == 131000
    assert breaker.current_state == "open"
    before = calls("send.text", "breaker_open")

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    assert caught.value.code == "breaker_open"
    assert caught.value.retryable is True
    assert len(fake_graph.sent()) == 3  # short-circuited: no request
    assert calls("send.text", "breaker_open") == before + 1

    # The reset timeout elapses (30 s in production): one trial call goes through.
    breaker.reset_timeout = 0
    result = graph.send_text(MARIA, "Oi de novo")

    assert result.message_id.startswith("wamid.FAKE")
    assert len(fake_graph.sent()) == 4
    assert breaker.current_state == "closed"


def test_a_failed_trial_call_opens_the_breaker_again(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.fail("POST", messages_path(), code=2, status=503, times=4)
    breaker = get_breaker("whatsapp")
    for _ in range(3):
        with pytest.raises(TransportError):
            graph.send_text(MARIA, "Oi")
    breaker.reset_timeout = 0

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    assert caught.value.code == 2
    assert breaker.current_state == "open"


@pytest.mark.redis
def test_the_open_breaker_is_shared_through_redis(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    from ispsupport import breakers

    fake_graph.fail("POST", messages_path(), code=131000, status=500, times=3)
    for _ in range(3):
        with pytest.raises(TransportError):
            graph.send_text(MARIA, "Oi")
    # Another process: a breaker object of its own, the state from Redis.
    breakers.forget_breakers()

    with pytest.raises(TransportError) as caught:
        graph.send_text(MARIA, "Oi")

    assert breakers.breaker_status("whatsapp")["storage"] == "redis"
    assert caught.value.code == "breaker_open"
    assert len(fake_graph.sent()) == 3


def test_refused_messages_do_not_open_the_breaker(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.fail("POST", messages_path(), code=131047, times=5)

    for _ in range(5):
        with pytest.raises(TransportError):
            graph.send_text(MARIA, "Oi")

    assert get_breaker("whatsapp").current_state == "closed"
    assert len(fake_graph.sent()) == 5


# --- Media and templates ----------------------------------------------------------------


def test_media_info(graph: GraphTransport, fake_graph: FakeGraph) -> None:
    fake_graph.reply(
        "GET",
        f"/{settings.WHATSAPP_API_VERSION}/1013",
        {
            "messaging_product": "whatsapp",
            "url": f"{fake_graph.url}/whatsapp_business/attachments/?mid=1013",
            "mime_type": "image/jpeg",
            "sha256": "abc",
            "file_size": "2048",
            "id": "1013",
        },
    )

    info = graph.media_info("1013")

    assert info == transport.MediaInfo(
        url=f"{fake_graph.url}/whatsapp_business/attachments/?mid=1013",
        mime_type="image/jpeg",
        file_size=2048,
        sha256="abc",
        id="1013",
    )
    [request] = fake_graph.requests
    assert request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_media_download_streams_with_the_token(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    data = b"\xff\xd8\xff" + b"x" * 5000
    fake_graph.serve_bytes("/whatsapp_business/attachments/", data, content_type="image/jpeg")
    sink = io.BytesIO()

    download = graph.download_media(
        f"{fake_graph.url}/whatsapp_business/attachments/?mid=1013", max_bytes=10_000, sink=sink
    )

    assert (download.size, download.content_type, download.content) == (
        len(data),
        "image/jpeg",
        b"",
    )
    assert sink.getvalue() == data
    [request] = fake_graph.requests
    assert request.query == {"mid": ["1013"]}
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_media_larger_than_the_limit_is_refused(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.serve_bytes("/big", b"x" * 4096, content_type="video/mp4")

    with pytest.raises(TransportError) as caught:
        graph.download_media(f"{fake_graph.url}/big", max_bytes=4095)

    assert caught.value.code == "media_too_large"
    assert caught.value.retryable is False
    assert get_breaker("whatsapp").current_state == "closed"


def test_fetch_media_refuses_what_meta_says_is_too_large_without_downloading(
    graph: GraphTransport, fake_graph: FakeGraph
) -> None:
    fake_graph.reply(
        "GET",
        f"/{settings.WHATSAPP_API_VERSION}/1013",
        {"url": f"{fake_graph.url}/big", "mime_type": "video/mp4", "file_size": 9_000_000},
    )

    with pytest.raises(TransportError, match="9000000 bytes"):
        graph.fetch_media("1013", max_bytes=1_000_000)

    assert [r.path for r in fake_graph.requests] == [f"/{settings.WHATSAPP_API_VERSION}/1013"]


def test_list_templates_follows_the_paging(account: WhatsAppAccount, fake_graph: FakeGraph) -> None:
    path = f"/{settings.WHATSAPP_API_VERSION}/{account.business_account_id}/message_templates"
    first = {"name": "boas_vindas", "language": "pt_BR", "status": "APPROVED", "components": []}
    second = {"name": "fatura", "language": "pt_BR", "status": "APPROVED", "components": []}
    fake_graph.reply(
        "GET",
        path,
        {
            "data": [first],
            "paging": {"cursors": {"before": "B", "after": "CURSOR1"}, "next": "https://x"},
        },
    )
    fake_graph.reply("GET", path, {"data": [second], "paging": {"cursors": {"before": "C"}}})

    assert transport.list_templates(account) == [first, second]
    assert [r.query for r in fake_graph.requests] == [
        {"limit": ["100"]},
        {"limit": ["100"], "after": ["CURSOR1"]},
    ]


def test_connections_active_counts_active_healthy_numbers(account: WhatsAppAccount) -> None:
    metrics.register()
    invalidate(metrics.CONNECTIONS_KEY)
    assert REGISTRY.get_sample_value("whatsapp_connections_active") == 1.0

    WhatsAppAccount.objects.filter(pk=account.pk).update(is_healthy=False)
    invalidate(metrics.CONNECTIONS_KEY)
    assert REGISTRY.get_sample_value("whatsapp_connections_active") == 0.0
