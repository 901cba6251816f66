"""Websocket routes. The apps add theirs here (the console consumer comes with
the agent console)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
