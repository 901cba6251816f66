"""Django admin for the bot: the single settings row, the menu, holidays and
the knowledge base."""

from __future__ import annotations

import html
from datetime import date
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from accounts.models import Team, User
from chatbot.config import bot_config
from chatbot.models import BotSettings, Holiday, Intent, KnowledgeArticle, MenuOption
from conversations.models import Inbox
from tests.whatsapp.factories import account_of, approved_template

SETTINGS = "/admin/chatbot/botsettings/"
SETTINGS_PAGE = f"{SETTINGS}1/change/"
MENU = "/admin/chatbot/menuoption/"
HOLIDAYS = "/admin/chatbot/holiday/"
ARTICLES = "/admin/chatbot/knowledgearticle/"
EN = {"Accept-Language": "en"}


@pytest.fixture
def root(db: None) -> Client:
    user = User.objects.create_superuser(username="root.ops", password=None)
    client = Client(headers=EN)
    client.force_login(user)
    return client


def page(response: HttpResponse) -> str:
    return html.unescape(response.content.decode())


def settings_data(**overrides: Any) -> dict[str, Any]:
    """The settings form as the admin page posts it, unchanged unless overridden."""
    row = BotSettings.objects.get(pk=1)
    data: dict[str, Any] = {
        "company_name": row.company_name,
        "fallback_team": row.fallback_team_id or "",
        "greeting": row.greeting,
        "menu_prompt": row.menu_prompt,
        "not_understood": row.not_understood,
        "handoff_message": row.handoff_message,
        "out_of_hours_message": row.out_of_hours_message,
        "goodbye": row.goodbye,
        "business_hours": '{"0": [["08:00", "18:00"]]}',
        "csat_question": row.csat_question,
        "csat_thanks": row.csat_thanks,
        "csat_template": row.csat_template,
    }
    for switch in ("enabled", "use_gemini", "csat_enabled"):
        if getattr(row, switch):
            data[switch] = "on"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- Bot settings: a single row ---------------------------------------------------------


def test_the_list_opens_the_single_settings_row(root: Client) -> None:
    response = root.get(SETTINGS)

    assert response.status_code == 302
    assert response["Location"] == SETTINGS_PAGE
    assert BotSettings.objects.count() == 1


def test_the_settings_row_is_made_when_missing(root: Client) -> None:
    BotSettings.objects.all().delete()

    response = root.get(SETTINGS)

    assert response["Location"] == SETTINGS_PAGE
    assert list(BotSettings.objects.values_list("pk", flat=True)) == [1]


def test_the_admin_index_lists_the_bot_without_a_second_settings_row(root: Client) -> None:
    html_page = page(root.get("/admin/"))

    assert 'href="/admin/chatbot/botsettings/"' in html_page
    assert 'href="/admin/chatbot/botsettings/add/"' not in html_page
    for model in ("menuoption", "holiday", "knowledgearticle"):
        assert f'href="/admin/chatbot/{model}/add/"' in html_page


def test_settings_can_be_neither_added_again_nor_deleted(root: Client) -> None:
    assert root.get(f"{SETTINGS}add/").status_code == 403
    assert root.post(f"{SETTINGS}1/delete/", {"post": "yes"}).status_code == 403
    assert BotSettings.objects.filter(pk=1).exists()
    html_page = page(root.get(SETTINGS_PAGE))
    assert f"{SETTINGS}1/delete/" not in html_page
    assert "Save and add another" not in html_page


def test_staff_who_are_not_admins_are_turned_away(agent: User) -> None:
    client = Client(headers=EN)
    client.force_login(agent)

    response = client.get(SETTINGS)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_page_groups_the_settings_and_previews_the_menu(root: Client) -> None:
    MenuOption.objects.filter(position=7).update(active=False)

    html_page = page(root.get(SETTINGS_PAGE))

    for legend in ("General", "Texts", "Hours", "Rating"):
        assert f">{legend}</h2>" in html_page
    assert "Como posso ajudar? Responda com o número da opção:" in html_page
    assert "<strong>1</strong> - 2ª via do boleto / PIX" in html_page
    assert "<li><strong>Sem internet</strong> — Verificar falhas e testar conexão</li>" in html_page
    assert "Cancelamento" not in html_page  # inactive: the customer does not see it
    assert '"0": [["08:00", "18:00"]],\n' in html_page  # one weekday per line


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("", "GEMINI_API_KEY is not configured: the rules alone answer"),
        ("AIza-test-key", "GEMINI_API_KEY is configured: Gemini reads"),
    ],
)
def test_the_page_says_whether_gemini_can_run(
    root: Client, settings: Any, key: str, shown: str
) -> None:
    settings.GEMINI_API_KEY = key

    assert shown in page(root.get(SETTINGS_PAGE))


def test_the_page_says_on_which_numbers_the_rating_template_can_go(root: Client) -> None:
    assert "No template: after 24 hours no rating is asked." in page(root.get(SETTINGS_PAGE))
    BotSettings.objects.filter(pk=1).update(csat_template="avaliacao")
    ready, stale, needs_values = (
        Inbox.objects.create(name=name) for name in ("Fibra Centro", "Fibra Norte", "Fibra Sul")
    )
    for inbox, number, body in (
        (ready, "1001", "Avalie de 1 a 5"),
        (needs_values, "1003", "Olá {{1}}, avalie de 1 a 5"),
    ):
        approved_template(account_of(inbox, number), "avaliacao", [{"type": "BODY", "text": body}])
    account_of(stale, "1002")

    html_page = page(root.get(SETTINGS_PAGE))

    assert "<li>Fibra Centro: ready (pt_BR)</li>" in html_page
    assert "<li>Fibra Norte: not approved or not synced: it is not sent" in html_page
    assert "<li>Fibra Sul: it takes values or a file the bot does not have: not sent</li>" in (
        html_page
    )


def test_saving_texts_reaches_the_bot_at_once(root: Client, support: Team) -> None:
    assert bot_config().settings.greeting.startswith("Olá{name}!")  # now cached

    response = root.post(
        SETTINGS_PAGE,
        settings_data(
            greeting="Oi{name}! Aqui é a {company}. Protocolo {protocol}.",
            company_name="Fibra Rápida",
            fallback_team=support.pk,
            csat_enabled=None,
            business_hours='{"0": [["07:00", "19:00"]], "5": [["08:00", "12:00"]]}',
        ),
    )

    assert response.status_code == 302
    config = bot_config().settings
    assert config.greeting == "Oi{name}! Aqui é a {company}. Protocolo {protocol}."
    assert config.company_name == "Fibra Rápida"
    assert config.fallback_team_id == support.pk
    assert config.csat_enabled is False
    assert config.business_hours == {"0": [["07:00", "19:00"]], "5": [["08:00", "12:00"]]}


ALLOWED = "use {name}, {protocol}, {position}, {wait}, {company}."


@pytest.mark.parametrize(
    ("field", "text", "error"),
    [
        ("greeting", "Olá {nome}!", "Unknown placeholder {nome}; " + ALLOWED),
        ("greeting", "Olá {name!r}", "Unknown placeholder {name!r}; " + ALLOWED),
        ("handoff_message", "Posição: {position:>3}", "Unknown placeholder {position:>3}; "),
        ("handoff_message", "Você é o {position", "A brace is not closed (expected '}' before"),
        ("out_of_hours_message", "Protocolo {protocol}}", "(Single '}' encountered in format"),
    ],
)
def test_a_text_the_bot_could_not_fill_is_a_form_error(
    root: Client, field: str, text: str, error: str
) -> None:
    before = BotSettings.objects.get(pk=1)

    response = root.post(SETTINGS_PAGE, settings_data(**{field: text}))

    assert response.status_code == 200
    assert error in page(response)
    assert getattr(BotSettings.objects.get(pk=1), field) == getattr(before, field)


@pytest.mark.parametrize(
    ("hours", "error"),
    [
        ('{"0": [["08:00", "18:00"]', "Enter a valid JSON."),
        ('{"0": [["18:00", "08:00"]]}', "(18:00-08:00 ends before it starts)"),
        ('{"9": [["08:00", "18:00"]]}', "(weekday '9' is not 0 (Monday) to 6 (Sunday))"),
        ('{"0": [["8h", "18h"]]}', "Business hours must look like"),
        ('{"0": "08:00-18:00"}', "Business hours must look like"),
        ('[["08:00", "18:00"]]', "Business hours must look like"),
        ("", "This field is required."),
    ],
)
def test_malformed_business_hours_are_a_form_error(root: Client, hours: str, error: str) -> None:
    before = BotSettings.objects.get(pk=1)

    response = root.post(SETTINGS_PAGE, settings_data(business_hours=hours, goodbye="Tchau!"))

    assert response.status_code == 200
    assert error in page(response)
    after = BotSettings.objects.get(pk=1)
    assert (after.business_hours, after.goodbye) == (before.business_hours, before.goodbye)


# --- Menu ------------------------------------------------------------------------------


def test_the_menu_list_shows_the_options_in_order(root: Client, support: Team) -> None:
    MenuOption.objects.filter(position=3).update(team=support)

    response = root.get(MENU)

    assert response.status_code == 200
    rows = [(o.position, o.label, o.team) for o in response.context["cl"].result_list]
    assert rows[:3] == [
        (1, "2ª via do boleto / PIX", None),
        (2, "Desbloqueio de confiança", None),
        (3, "Sem internet", support),
    ]
    assert [position for position, _label, _team in rows] == list(range(1, 9))


def option_data(position: int, **overrides: Any) -> dict[str, Any]:
    data = {
        "position": position,
        "label": f"Opção {position}",
        "description": "",
        "intent": Intent.AGENT,
        "team": "",
        "active": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_the_eleventh_active_option_is_refused(root: Client) -> None:
    for position in (9, 10):
        assert root.post(f"{MENU}add/", option_data(position)).status_code == 302
    assert MenuOption.objects.filter(active=True).count() == 10

    refused = root.post(f"{MENU}add/", option_data(11))
    inactive = root.post(f"{MENU}add/", option_data(12, active=None))

    assert refused.status_code == 200
    assert (
        "WhatsApp lists hold at most 10 rows: at most 10 menu options may be active "
        "(this would make 11)." in page(refused)
    )
    assert not MenuOption.objects.filter(position=11).exists()
    assert inactive.status_code == 302
    assert MenuOption.objects.get(position=12).active is False


def test_switching_on_several_options_in_the_list_counts_them_together(root: Client) -> None:
    MenuOption.objects.create(position=9, label="Segunda via", intent=Intent.INVOICE)
    extra = [
        MenuOption.objects.create(position=p, label=f"Extra {p}", intent=Intent.AGENT, active=False)
        for p in (10, 11, 12)
    ]
    options = list(MenuOption.objects.order_by("position"))
    data: dict[str, Any] = {
        "form-TOTAL_FORMS": len(options),
        "form-INITIAL_FORMS": len(options),
        "form-MIN_NUM_FORMS": 0,
        "form-MAX_NUM_FORMS": 1000,
        "_save": "Save",
    }
    for index, option in enumerate(options):
        data[f"form-{index}-id"] = option.pk
        data[f"form-{index}-team"] = ""
        if option.active or option in extra:
            data[f"form-{index}-active"] = "on"

    response = root.post(MENU, data)

    assert response.status_code == 200
    assert "(this would make 12)" in page(response)
    assert MenuOption.objects.filter(active=True).count() == 9


def test_a_label_longer_than_whatsapp_shows_is_refused(root: Client) -> None:
    response = root.post(f"{MENU}add/", option_data(9, label="Segunda via da fatura atual"))

    assert response.status_code == 200
    assert "Ensure this value has at most 24 characters (it has 27)." in page(response)
    assert not MenuOption.objects.filter(position=9).exists()


def test_a_menu_change_reaches_the_bot_at_once(root: Client, support: Team) -> None:
    assert bot_config().option(3).team_id is None  # now cached
    option = MenuOption.objects.get(position=3)

    response = root.post(
        f"{MENU}{option.pk}/change/",
        option_data(3, label="Estou sem internet", intent=Intent.NO_INTERNET, team=support.pk),
    )

    assert response.status_code == 302
    entry = bot_config().option(3)
    assert (entry.label, entry.team_id) == ("Estou sem internet", support.pk)


# --- Holidays and knowledge base ------------------------------------------------------


def test_holidays_are_listed_by_date_with_a_date_hierarchy(root: Client) -> None:
    Holiday.objects.create(date=date(2025, 12, 25), name="Natal")
    Holiday.objects.create(date=date(2025, 11, 20), name="Consciência Negra")

    response = root.get(HOLIDAYS)

    assert response.status_code == 200
    assert [h.name for h in response.context["cl"].result_list] == ["Consciência Negra", "Natal"]
    assert "?date__month=11&date__year=2025" in page(response)


def test_the_knowledge_base_is_searched_in_questions_answers_and_keywords(root: Client) -> None:
    wifi = KnowledgeArticle.objects.create(
        question="Como trocar a senha do Wi-Fi?",
        answer="Acesse 192.168.0.1 e abra a aba Wireless.",
        keywords="senha, roteador",
    )
    hours = KnowledgeArticle.objects.create(
        question="Qual o horário da loja?", answer="De segunda a sexta, das 8h às 18h."
    )
    old = KnowledgeArticle.objects.create(
        question="Como pagar com boleto em papel?",
        answer="Na agência mais próxima.",
        keywords="boleto, roteador antigo",
        active=False,
    )

    def found(query: str) -> set[int]:
        response = root.get(ARTICLES, {"q": query})
        assert response.status_code == 200
        return {article.pk for article in response.context["cl"].result_list}

    assert found("senha") == {wifi.pk}
    assert found("wireless") == {wifi.pk}
    assert found("roteador") == {wifi.pk, old.pk}
    assert found("sexta") == {hours.pk}
    assert found("fibra") == set()
    inactive = root.get(ARTICLES, {"active__exact": "0"})
    assert [a.pk for a in inactive.context["cl"].result_list] == [old.pk]
