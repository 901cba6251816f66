"""``{% load chat %}``: ``text|chat_markup`` renders WhatsApp's formatting;
``text|chat_plain`` drops its markers (see ``conversations.markup``)."""

from __future__ import annotations

from django import template

from conversations.markup import chat_markup, chat_plain

register = template.Library()
register.filter("chat_markup", chat_markup, is_safe=True)
register.filter("chat_plain", chat_plain)
