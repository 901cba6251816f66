"""The bot's settings and menu, read through the cache on every message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models.signals import post_delete, post_save

from chatbot.models import BotSettings, Holiday, KnowledgeArticle, MenuOption
from ispsupport.cache import get_or_fetch, invalidate

CACHE_KEY = "chatbot:config:v1"
CACHE_TTL = 300


@dataclass(frozen=True)
class MenuEntry:
    position: int
    label: str
    description: str
    intent: str
    team_id: int | None


@dataclass(frozen=True)
class Article:
    id: int
    question: str
    answer: str
    keywords: str


@dataclass(frozen=True)
class BotConfig:
    settings: BotSettings
    menu: tuple[MenuEntry, ...]
    holidays: frozenset[date]
    articles: tuple[Article, ...]

    def option(self, position: int) -> MenuEntry | None:
        return next((o for o in self.menu if o.position == position), None)

    def option_for(self, intent: str) -> MenuEntry | None:
        return next((o for o in self.menu if o.intent == intent), None)


def _load() -> BotConfig:
    bot_settings, _created = BotSettings.objects.get_or_create(pk=1)
    return BotConfig(
        settings=bot_settings,
        menu=tuple(
            MenuEntry(o.position, o.label, o.description, o.intent, o.team_id)
            for o in MenuOption.objects.filter(active=True).order_by("position")
        ),
        holidays=frozenset(Holiday.objects.values_list("date", flat=True)),
        articles=tuple(
            Article(a.pk, a.question, a.answer, a.keywords)
            for a in KnowledgeArticle.objects.filter(active=True).order_by("pk")
        ),
    )


def bot_config() -> BotConfig:
    """Settings, active menu, holidays and knowledge base, cached for 5 minutes
    and dropped on every admin change."""
    return get_or_fetch(CACHE_KEY, _load, ttl=CACHE_TTL)


def _changed(**_kwargs: object) -> None:
    invalidate(CACHE_KEY)


def connect() -> None:
    for model in (BotSettings, MenuOption, Holiday, KnowledgeArticle):
        post_save.connect(_changed, sender=model, dispatch_uid=f"chatbot-config-{model.__name__}")
        post_delete.connect(
            _changed, sender=model, dispatch_uid=f"chatbot-config-del-{model.__name__}"
        )
