"""The worker-to-daphne relay of live events on the embedded defaults."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

from ispsupport import events


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def daphne_stand_in() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Recorder.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/internal/events", _Recorder.received
    server.shutdown()
    server.server_close()


def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def _receive(channel: str) -> dict[str, Any]:
    return async_to_sync(get_channel_layer().receive)(channel)


def _post(client: Client, body: bytes, signature: str) -> Any:
    return client.post(
        "/internal/events",
        body,
        content_type="application/json",
        headers={"X-Events-Signature": signature},
    )


def test_a_worker_with_a_relay_url_hands_its_events_over_http_signed(
    settings: Any, daphne_stand_in: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = daphne_stand_in
    settings.EVENTS_RELAY_URL = url

    events.publish(["team.1", "team.1", "user.2"], {"type": "conversation.update", "id": 7})

    [(headers, body)] = received
    assert headers["X-Events-Signature"] == events.relay_signature(body)
    assert b'"groups":["team.1","user.2"]' in body
    assert b'"event":"' in body


def test_a_relay_that_is_down_loses_the_live_update_but_raises_nothing(settings: Any) -> None:
    settings.EVENTS_RELAY_URL = "http://127.0.0.1:9/internal/events"

    events.publish(["team.1"], {"type": "conversation.update", "id": 7})


@pytest.mark.skipif(
    "InMemory" not in type(get_channel_layer()).__name__,
    reason="the relay only exists where the channel layer is in memory",
)
class TestRelayView:
    def test_signed_events_reach_the_groups_of_this_process(self, client: Client) -> None:
        channel = _listen("team.41")
        body = (
            b'{"groups":["team.41"],"payload":{"type":"conversation.update","id":5,"event":"e1"}}'
        )

        response = _post(client, body, events.relay_signature(body))

        assert response.status_code == 204
        assert _receive(channel) == {"type": "conversation.update", "id": 5, "event": "e1"}

    def test_a_wrong_signature_is_refused_and_nothing_is_sent(self, client: Client) -> None:
        channel = _listen("team.42")
        body = b'{"groups":["team.42"],"payload":{"type":"conversation.update","id":5}}'

        response = _post(client, body, "0" * 64)

        assert response.status_code == 403
        good = b'{"groups":["team.42"],"payload":{"type":"note.created","id":1}}'
        _post(client, good, events.relay_signature(good))
        assert _receive(channel)["type"] == "note.created"  # the forged one never arrived

    @pytest.mark.parametrize(
        "body",
        [b"not json", b"{}", b'{"groups":["x"],"payload":{"id":1}}', b'{"groups":1,"payload":{}}'],
    )
    def test_a_malformed_body_is_a_400_not_a_500(self, client: Client, body: bytes) -> None:
        response = _post(client, body, events.relay_signature(body))

        assert response.status_code == 400

    def test_only_post(self, client: Client) -> None:
        assert client.get("/internal/events").status_code == 404
