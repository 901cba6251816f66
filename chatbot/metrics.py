"""Chatbot metrics (the seed's names)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BOT_MESSAGES = Counter(
    "bot_messages_total",
    "Customer messages the bot handled, by the intent it read "
    "(menu, invoice, trust_unlock, no_internet, …, faq, csat, unknown).",
    ["intent"],
)
BOT_HANDOFFS = Counter(
    "bot_handoffs_total",
    "Conversations the bot handed to people, by reason "
    "(requested, intent, not_understood, identification_failed, troubleshooting_failed, "
    "directory_error, bot_disabled, unlock_refused).",
    ["reason"],
)
BOT_SELF_SERVED = Counter(
    "bot_self_served_total",
    "Conversations resolved by the bot without ever reaching a person.",
)
GEMINI_REQUESTS = Counter(
    "gemini_requests_total",
    "Calls to Gemini by outcome (ok, low_confidence, invalid, error, timeout, breaker_open).",
    ["outcome"],
)
GEMINI_SECONDS = Histogram(
    "gemini_request_seconds",
    "Time of a Gemini call, failures included.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
