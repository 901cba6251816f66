"""Subscribers API: /api/v1/subscribers/… (filled in by the API module)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
