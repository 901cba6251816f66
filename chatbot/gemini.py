"""Gemini, used only to read a customer's free text: which of the bot's
intents it asks for, or which knowledge-base article answers it. (Interface
placeholder; the client comes next.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatbot.config import Article


@dataclass(frozen=True)
class Reading:
    intent: str | None  # one of chatbot.models.Intent, or None
    article_id: int | None  # a KnowledgeArticle id whose answer fits, or None
    confidence: float


def is_configured() -> bool:
    return False


def read_message(
    text: str, *, intents: Sequence[tuple[str, str]], articles: Sequence[Article]
) -> Reading | None:
    return None
