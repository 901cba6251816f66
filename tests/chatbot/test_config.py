"""The bot's configuration: read once, cached, and dropped on every change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from accounts.models import Team
from chatbot.config import BotConfig, bot_config
from chatbot.models import BotSettings, Holiday, Intent, KnowledgeArticle, MenuOption

NATAL = date(2025, 12, 25)


@pytest.fixture
def content(db: None) -> None:
    Holiday.objects.create(date=NATAL, name="Natal")
    Holiday.objects.create(date=date(2025, 11, 20), name="Consciência Negra")
    KnowledgeArticle.objects.create(
        question="Como trocar a senha do Wi-Fi?", answer="Acesse 192.168.0.1.", keywords="senha"
    )
    KnowledgeArticle.objects.create(question="Antigo", answer="Fora do ar.", active=False)


def test_the_menu_is_read_in_order_and_only_active_options(content: None, support: Team) -> None:
    MenuOption.objects.filter(position=7).update(active=False)
    # Saved out of order: the position decides, not the row id.
    MenuOption.objects.filter(position=1).update(position=20)
    MenuOption.objects.create(position=0, label="Promoções", intent=Intent.PLANS, team=support)

    config = bot_config()

    assert [(o.position, o.label) for o in config.menu] == [
        (0, "Promoções"),
        (2, "Desbloqueio de confiança"),
        (3, "Sem internet"),
        (4, "Internet lenta"),
        (5, "Visita técnica"),
        (6, "Planos / mudar de plano"),
        (8, "Falar com atendente"),
        (20, "2ª via do boleto / PIX"),
    ]
    assert config.option(0).team_id == support.pk
    assert config.option(7) is None
    assert config.option_for(Intent.CANCELLATION) is None
    assert config.holidays == frozenset({NATAL, date(2025, 11, 20)})
    assert [a.question for a in config.articles] == ["Como trocar a senha do Wi-Fi?"]
    assert config.settings.pk == 1


def test_the_settings_row_is_made_when_missing(db: None) -> None:
    BotSettings.objects.all().delete()

    config = bot_config()

    assert config.settings.pk == 1
    assert config.settings.csat_enabled is True
    assert BotSettings.objects.count() == 1


def test_a_second_read_costs_no_query(
    content: None, django_assert_num_queries: Callable[..., Any]
) -> None:
    first = bot_config()

    with django_assert_num_queries(0):
        second = bot_config()

    assert second.menu == first.menu
    assert second.holidays == first.holidays
    assert second.articles == first.articles


def _rename_option() -> None:
    option = MenuOption.objects.get(position=3)
    option.label = "Estou sem internet"
    option.save()


def _switch_off_option() -> None:
    option = MenuOption.objects.get(position=3)
    option.active = False
    option.save()


def _delete_option() -> None:
    MenuOption.objects.get(position=3).delete()


def _new_greeting() -> None:
    row = BotSettings.objects.get(pk=1)
    row.greeting = "Oi{name}!"
    row.save()


def _new_holiday() -> None:
    Holiday.objects.create(date=date(2026, 1, 1), name="Ano Novo")


def _delete_holiday() -> None:
    Holiday.objects.get(date=NATAL).delete()


def _new_article() -> None:
    KnowledgeArticle.objects.create(question="Qual o horário?", answer="Das 8h às 18h.")


def _retire_article() -> None:
    article = KnowledgeArticle.objects.get(question="Como trocar a senha do Wi-Fi?")
    article.active = False
    article.save()


def _delete_article() -> None:
    KnowledgeArticle.objects.get(question="Como trocar a senha do Wi-Fi?").delete()


def _labels(config: BotConfig) -> list[str]:
    return [o.label for o in config.menu if o.position == 3]


def _questions(config: BotConfig) -> list[str]:
    return [a.question for a in config.articles]


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (_rename_option, lambda c: _labels(c) == ["Estou sem internet"]),
        (_switch_off_option, lambda c: _labels(c) == []),
        (_delete_option, lambda c: _labels(c) == []),
        (_new_greeting, lambda c: c.settings.greeting == "Oi{name}!"),
        (_new_holiday, lambda c: date(2026, 1, 1) in c.holidays),
        (_delete_holiday, lambda c: NATAL not in c.holidays),
        (_new_article, lambda c: "Qual o horário?" in _questions(c)),
        (_retire_article, lambda c: _questions(c) == []),
        (_delete_article, lambda c: _questions(c) == []),
    ],
    ids=lambda value: getattr(value, "__name__", "").lstrip("_") or None,
)
def test_a_change_is_seen_on_the_next_read(
    content: None, change: Callable[[], None], seen: Callable[[BotConfig], bool]
) -> None:
    before = bot_config()
    assert not seen(before)

    change()

    assert seen(bot_config())


def test_a_bulk_delete_is_seen_on_the_next_read(content: None) -> None:
    """The admin's "delete selected" deletes a queryset: one signal per row still."""
    bot_config()

    Holiday.objects.all().delete()
    KnowledgeArticle.objects.all().delete()

    config = bot_config()
    assert config.holidays == frozenset()
    assert config.articles == ()
