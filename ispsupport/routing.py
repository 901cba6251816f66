"""Websocket routes: the agent console's live socket, one per browser tab."""

from django.urls import URLPattern, path

from conversations.consumers import ConsoleConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
]
