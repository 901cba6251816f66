"""Django admin as an ISP's admin uses it.

Every page of every registered model answers (no 500 anywhere), the heavy
lists stay at a constant number of queries, search finds rows by their main
fields, text a customer wrote is inert on every page and message, the user
pages keep the role rules of ``accounts.services``, and console users are
turned away.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from itertools import count
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import Model
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as accounts_services
from accounts.models import Team, User
from chatbot.models import BotSettings, Holiday, KnowledgeArticle, MenuOption
from conversations import services
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Note,
    Tag,
    TeamQueue,
)
from subscribers.models import Contract
from tests.conversations.conftest import (  # noqa: F401 - shared fixtures
    _fast_password_hashing,
    _no_channel_registrations,
    _no_greeting,
    agent,
    finance,
    inbox,
    receive,
    supervisor,
    support,
)
from tests.ispsupport.sample_tasks import echo
from tests.subscribers.factories import (
    make_contract,
    make_invoice,
    make_outage,
    make_plan,
    make_subscriber,
)
from whatsapp.models import EarlyStatus, MessageTemplate, WhatsAppAccount

EN = {"Accept-Language": "en"}
PASSWORD = "Senha-Forte-123"
# django_tasks_database: the task results page is the helpdesk admins' too.
OUR_APPS = {
    "accounts",
    "conversations",
    "whatsapp",
    "chatbot",
    "subscribers",
    "django_tasks_database",
}
REGISTERED = sorted(model._meta.label for model in admin.site._registry)


def evil(n: int) -> str:
    """Text a customer could write, numbered so each field can be found again."""
    return f"<img src=x onerror=alert({n})><script>alert({n})</script>"


def escaped(n: int) -> str:
    return f"&lt;img src=x onerror=alert({n})&gt;&lt;script&gt;alert({n})&lt;/script&gt;"


def assert_inert(response: HttpResponse, *fields: int) -> None:
    """The page answered, shows each numbered text escaped and none of it raw."""
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    assert "<img src=x" not in html
    assert "<script>alert(" not in html
    for n in fields:
        assert escaped(n) in html, f"field {n} is not shown escaped"


def url(model: type[Model] | Model, view: str = "changelist", pk: Any = None) -> str:
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    if view == "changelist":
        return base
    if view == "add":
        return f"{base}add/"
    return f"{base}{pk}/{view}/"


def listed(response: HttpResponse) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def form_data(response: HttpResponse, **overrides: Any) -> dict[str, Any]:
    """What the browser posts back from a change page, with ``overrides``."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if callable(value):
                value = value()
            if isinstance(value, (list, tuple)):
                value = [getattr(v, "pk", v) for v in value]
            elif hasattr(value, "pk"):
                value = value.pk
            if value is None:
                value = ""
            if value is True:
                value = "on"
            if value is not False:
                data[form.add_prefix(name)] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for form in formset.forms:
            add(form)
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def client_for(user: User) -> Client:
    client = Client(headers=EN)
    client.force_login(user)
    return client


# --- People ---------------------------------------------------------------------------


@pytest.fixture
def helpdesk_admin(db: None) -> User:
    """An admin as the users API makes one: the admin role, staff, not a superuser."""
    return accounts_services.user_create(
        username="ana.admin", password=PASSWORD, role=User.Role.ADMIN, name="Ana"
    )


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser(username="root.ops", password=PASSWORD)


@pytest.fixture
def admin_client(helpdesk_admin: User) -> Client:
    return client_for(helpdesk_admin)


@pytest.fixture
def root_client(root: User) -> Client:
    return client_for(root)


# --- One row of every registered model ----------------------------------------------------


@pytest.fixture
def world(
    agent: User,  # noqa: F811 - the imported fixture
    support: Team,  # noqa: F811
    inbox: Inbox,  # noqa: F811
    receive: Callable[..., Message],  # noqa: F811
) -> dict[str, Model]:
    message = receive()
    conversation = message.conversation
    note = services.note_create(conversation=conversation, author=agent, text="Reiniciou")
    refresh = RefreshToken.for_user(agent)
    refresh.blacklist()
    echo.enqueue("olá")
    plan = make_plan()
    subscriber = make_subscriber()
    contract = make_contract(subscriber=subscriber, plan=plan)
    account = WhatsAppAccount.objects.create(
        inbox=Inbox.objects.create(name="WhatsApp Vendas"),
        name="Vendas",
        phone_number_id="300000000000001",
        display_phone="+55 11 4000-9999",
    )
    rows: dict[str, Model] = {
        "accounts.User": agent,
        "accounts.Team": support,
        "auth.Group": Group.objects.create(name="Operação"),
        "token_blacklist.OutstandingToken": OutstandingToken.objects.get(jti=refresh["jti"]),
        "token_blacklist.BlacklistedToken": BlacklistedToken.objects.get(),
        "django_tasks_database.DBTaskResult": DBTaskResult.objects.get(),
        "subscribers.Plan": plan,
        "subscribers.Subscriber": subscriber,
        "subscribers.Contract": contract,
        "subscribers.Invoice": make_invoice(contract=contract, due_date=date(2025, 3, 10)),
        "subscribers.Outage": make_outage(),
        "conversations.Conversation": conversation,
        "conversations.Contact": conversation.contact,
        "conversations.Message": message,
        "conversations.Note": note,
        "conversations.Tag": Tag.objects.create(name="lentidão", color="#0ea5e9"),
        "conversations.CannedReply": CannedReply.objects.create(
            shortcut="boleto", title="Segunda via", text="Olá {{contact.first_name}}"
        ),
        "conversations.TeamQueue": TeamQueue.objects.create(team=support),
        "conversations.Inbox": inbox,
        "whatsapp.WhatsAppAccount": account,
        "whatsapp.MessageTemplate": MessageTemplate.objects.create(
            account=account,
            name="fatura",
            language="pt_BR",
            status="APPROVED",
            components=[{"type": "BODY", "text": "Olá {{1}}"}],
            synced_at=timezone.now(),
        ),
        "whatsapp.EarlyStatus": EarlyStatus.objects.create(
            external_id="wamid.EARLY", status="delivered", at=timezone.now()
        ),
        "chatbot.BotSettings": BotSettings.objects.get_or_create(pk=1)[0],
        "chatbot.MenuOption": MenuOption.objects.order_by("position").first(),  # type: ignore[dict-item]
        "chatbot.Holiday": Holiday.objects.create(date=date(2025, 11, 20), name="Consciência"),
        "chatbot.KnowledgeArticle": KnowledgeArticle.objects.create(
            question="Qual o horário?", answer="Das 8h às 18h.", keywords="horário"
        ),
    }
    return rows


def permissions(user: User, model_admin: admin.ModelAdmin, obj: Model) -> tuple[bool, bool]:
    request = RequestFactory().get("/admin/")
    request.user = user
    return model_admin.has_add_permission(request), model_admin.has_delete_permission(request, obj)


@pytest.mark.parametrize("label", REGISTERED)
def test_every_admin_page_answers(
    label: str, world: dict[str, Model], root: User, helpdesk_admin: User
) -> None:
    assert label in world, f"{label} is registered in admin: add a row of it to world()"
    obj = world[label]
    model_admin = admin.site._registry[type(obj)]
    ours = obj._meta.app_label in OUR_APPS

    for user in (root, helpdesk_admin):
        client = client_for(user)
        if user is helpdesk_admin and not ours:
            # Django's own and third-party pages keep Django's permissions,
            # which only a superuser has.
            assert client.get(url(obj)).status_code == 403
            continue
        pages = [url(obj), url(obj, "change", obj.pk), url(obj, "history", obj.pk)]
        may_add, may_delete = permissions(user, model_admin, obj)
        if isinstance(obj, User):
            pages.append(url(obj, "password", obj.pk))
        for page in pages:
            response = client.get(page, follow=True)
            assert response.status_code == 200, (user.username, page)
        add = client.get(url(obj, "add"))
        assert add.status_code == (200 if may_add else 403), (user.username, "add")
        delete = client.get(url(obj, "delete", obj.pk))
        assert delete.status_code == (200 if may_delete else 403), (user.username, "delete")


def test_the_admin_index_lists_every_project_model_for_an_admin(admin_client: Client) -> None:
    html = admin_client.get("/admin/").content.decode()

    for label in REGISTERED:
        app_label, name = label.split(".")
        link = f'href="/admin/{app_label}/{name.lower()}/"'
        if app_label in OUR_APPS:
            assert link in html, label
        else:
            assert link not in html, label


# --- History cannot be changed ------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", ["root", "helpdesk_admin"])
def test_history_is_read_only_for_everyone(
    request: pytest.FixtureRequest, world: dict[str, Model], user_fixture: str
) -> None:
    client = client_for(request.getfixturevalue(user_fixture))
    conversation = world["conversations.Conversation"]
    message = world["conversations.Message"]
    note = world["conversations.Note"]

    for obj in (conversation, message, note):
        assert client.post(url(obj, "delete", obj.pk), {"post": "yes"}).status_code == 403
    edit = client.post(url(message, "change", message.pk), {"text": "editado", "status": "read"})
    page = client.get(url(conversation, "change", conversation.pk))

    assert edit.status_code == 403
    message.refresh_from_db()
    assert (message.text, message.status) == ("Minha internet caiu", "received")
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert Note.objects.filter(pk=note.pk).exists()
    form = page.context["adminform"].form
    # What the customer and the bot did is shown, never a form field.
    for name in ("protocol", "state", "csat_score", "created_at", "contact", "assignee"):
        assert name not in form.fields
    assert set(form.fields) == {"priority", "tags"}


# --- Customer text is inert -----------------------------------------------------------


@pytest.fixture
def hostile(
    agent: User,  # noqa: F811
    receive: Callable[..., Message],  # noqa: F811
) -> dict[str, Any]:
    """Rows carrying numbered customer text in every field a customer fills."""
    first = receive(evil(4), profile_name=evil(2), username=evil(3))
    conversation = first.conversation
    contact = conversation.contact
    services.contact_update(contact=contact, actor=agent, name=evil(1))
    image = receive(
        evil(5),
        profile_name=evil(2),
        kind="image",
        media_id="media-1",
        media_mime_type="image/jpeg",
        payload={"type": "image", "image": {"id": "media-1", "caption": evil(5)}},
    )
    document = receive(
        "",
        profile_name=evil(2),
        kind="document",
        media_id="media-2",
        media_mime_type="application/pdf",
        payload={"type": "document", "document": {"id": "media-2", "filename": evil(6)}},
    )
    note = services.note_create(conversation=conversation, author=agent, text=evil(7))
    Conversation.objects.filter(pk=conversation.pk).update(
        bot_state={"step": "invoice", "data": {"typed": evil(8)}}
    )
    by_profile = receive("oi", wa_id="5521977776666", profile_name=evil(9)).conversation
    by_username = receive(
        "oi", wa_id=None, bsuid="BR.1a2b3c", profile_name="", username=evil(10)
    ).conversation
    return {
        "conversation": conversation,
        "contact": contact,
        "text": first,
        "image": image,
        "document": document,
        "note": note,
        "by_profile": by_profile,
        "by_username": by_username,
    }


def test_customer_text_is_inert_on_every_list(
    admin_client: Client, hostile: dict[str, Any]
) -> None:
    assert_inert(admin_client.get(url(Contact)), 1, 3, 9, 10)
    assert_inert(admin_client.get(url(Conversation)), 1, 9, 10)
    assert_inert(admin_client.get(url(Message)), 1, 4, 5)
    assert_inert(admin_client.get(url(Note)), 7)
    assert_inert(admin_client.get(url(Contact), {"q": "onerror"}), 1, 3)


def test_customer_text_is_inert_on_every_page(
    admin_client: Client, hostile: dict[str, Any]
) -> None:
    conversation, contact = hostile["conversation"], hostile["contact"]

    assert_inert(admin_client.get(url(contact, "change", contact.pk)), 1, 2, 3)
    # Contact link, messages, caption, file name, notes and the bot's state.
    assert_inert(admin_client.get(url(conversation, "change", conversation.pk)), 1, 4, 5, 6, 7, 8)
    assert_inert(admin_client.get(url(Message, "change", hostile["text"].pk)), 4)
    assert_inert(admin_client.get(url(Message, "change", hostile["image"].pk)), 5)
    assert_inert(admin_client.get(url(Message, "change", hostile["document"].pk)), 6)
    assert_inert(admin_client.get(url(Note, "change", hostile["note"].pk)), 7)
    for other in ("by_profile", "by_username"):
        assert_inert(admin_client.get(url(Conversation, "change", hostile[other].pk)))
    # Deleting a contact with conversations lists what protects it.
    assert_inert(admin_client.get(url(contact, "delete", contact.pk)), 1)
    assert_inert(admin_client.get(url(contact, "history", contact.pk)), 1)


def test_customer_text_is_inert_in_messages_and_recent_actions(
    admin_client: Client, hostile: dict[str, Any]
) -> None:
    contact = hostile["contact"]
    page = admin_client.get(url(contact, "change", contact.pk))

    saved = admin_client.post(
        url(contact, "change", contact.pk),
        form_data(page, notes="Cliente pediu retorno"),
        follow=True,
    )

    assert_inert(saved, 1)
    [(level, text)] = flashed(saved)
    assert (level, text.startswith("The contact “")) == ("success", True)
    contact.refresh_from_db()
    assert (contact.name, contact.notes) == (evil(1), "Cliente pediu retorno")
    assert_inert(admin_client.get("/admin/"), 1)  # the "recent actions" list


def test_the_resolve_action_reports_inertly(admin_client: Client, hostile: dict[str, Any]) -> None:
    conversation = hostile["conversation"]

    response = admin_client.post(
        url(Conversation),
        {"action": "resolve", "_selected_action": [conversation.pk]},
        follow=True,
    )

    assert_inert(response, 1)
    assert flashed(response) == [("success", "1 conversation resolved.")]


# --- Lists stay at a constant number of queries ----------------------------------------------

_numbers = count(1)


def _phone() -> str:
    return f"55119{77000000 + next(_numbers):08d}"


def _cpf(seed: int) -> str:
    digits = [int(d) for d in f"{seed:09d}"]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(length + 1, 1, -1), strict=True))
        digits.append(0 if total % 11 < 2 else 11 - total % 11)
    return "".join(map(str, digits))


def grow_conversations(n: int, arrive: Callable[..., Message], staff: User) -> None:
    for _ in range(n):
        message = arrive(wa_id=_phone(), profile_name="Cliente")
        services.note_create(conversation=message.conversation, author=staff, text="ok")
    Conversation.objects.update(assignee=staff)


def grow_subscribers(n: int, arrive: Callable[..., Message], staff: User) -> None:
    plan = make_plan(code=f"P{next(_numbers)}")
    for _ in range(n):
        i = next(_numbers)
        subscriber = make_subscriber(
            code=f"S{i}", phone=f"+{_phone()}", document=_cpf(100000000 + i)
        )
        contract = make_contract(code=f"C{i}", subscriber=subscriber, plan=plan)
        make_invoice(code=f"F{i}", contract=contract, due_date=date(2025, 3, 10))


def grow_users(n: int, arrive: Callable[..., Message], staff: User) -> None:
    team = Team.objects.create(name=f"Equipe {next(_numbers)}")
    for _ in range(n):
        user = User.objects.create_user(username=f"agente{next(_numbers)}", password=None)
        user.teams.add(team)


HEAVY = [
    ("conversations.Conversation", grow_conversations),
    ("conversations.Message", grow_conversations),
    ("conversations.Contact", grow_conversations),
    ("conversations.Note", grow_conversations),
    ("subscribers.Subscriber", grow_subscribers),
    ("subscribers.Contract", grow_subscribers),
    ("subscribers.Invoice", grow_subscribers),
    ("accounts.User", grow_users),
]


@pytest.mark.parametrize(("label", "grow"), HEAVY, ids=[label for label, _ in HEAVY])
def test_changelist_queries_do_not_grow_with_rows(
    admin_client: Client,
    agent: User,  # noqa: F811
    receive: Callable[..., Message],  # noqa: F811
    label: str,
    grow: Callable[..., None],
) -> None:
    model = next(m for m in admin.site._registry if m._meta.label == label)
    grow(3, receive, agent)
    admin_client.get(url(model))  # warm: sessions, content types
    with CaptureQueriesContext(connection) as few:
        first = listed(admin_client.get(url(model)))
    grow(27, receive, agent)

    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url(model))

    assert len(listed(response)) > len(first) >= 3
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"] for q in many.captured_queries
    )


# --- Search finds rows by their main fields ----------------------------------------------------


@pytest.fixture
def searchable(world: dict[str, Model], agent: User) -> dict[str, Model]:  # noqa: F811
    contact = world["conversations.Contact"]
    services.contact_update(contact=contact, actor=agent, customer_code="CLI-4242")
    Contact.objects.filter(pk=contact.pk).update(username="maria.fibra")
    subscriber = world["subscribers.Subscriber"]
    subscriber.email = "maria@example.com"
    subscriber.save()
    return world


SEARCHES = [
    ("conversations.Conversation", "Maria", "conversations.Conversation"),
    ("conversations.Conversation", "988887777", "conversations.Conversation"),
    ("conversations.Contact", "CLI-4242", "conversations.Contact"),
    ("conversations.Contact", "maria.fibra", "conversations.Contact"),
    ("conversations.Message", "internet caiu", "conversations.Message"),
    ("conversations.Note", "Reiniciou", "conversations.Note"),
    ("conversations.CannedReply", "boleto", "conversations.CannedReply"),
    ("conversations.Tag", "lentid", "conversations.Tag"),
    ("accounts.User", "Bruno", "accounts.User"),
    ("accounts.Team", "Suporte", "accounts.Team"),
    ("subscribers.Subscriber", "maria@example", "subscribers.Subscriber"),
    ("subscribers.Subscriber", "Centro", "subscribers.Subscriber"),
    ("subscribers.Contract", "Maria Souza", "subscribers.Contract"),
    ("subscribers.Invoice", "Maria Souza", "subscribers.Invoice"),
    ("whatsapp.WhatsAppAccount", "4000-9999", "whatsapp.WhatsAppAccount"),
    ("chatbot.KnowledgeArticle", "horário", "chatbot.KnowledgeArticle"),
    ("chatbot.MenuOption", "boleto", "chatbot.MenuOption"),
]


@pytest.mark.parametrize(("label", "term", "expected"), SEARCHES)
def test_search_finds_rows_by_their_main_fields(
    admin_client: Client, searchable: dict[str, Model], label: str, term: str, expected: str
) -> None:
    model = type(searchable[label])

    found = listed(admin_client.get(url(model), {"q": term}))
    nothing = listed(admin_client.get(url(model), {"q": "zzz-nada-zzz"}))

    assert searchable[expected] in found
    assert nothing == []


def test_conversation_list_offers_the_filters_an_admin_needs(
    admin_client: Client, world: dict[str, Model]
) -> None:
    response = admin_client.get(url(Conversation))

    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert [str(t) for t in titles] == ["state", "team", "assignee", "priority", "inbox"]
    assert response.context["cl"].date_hierarchy == "created_at"


# --- Console users are turned away ---------------------------------------------------------


@pytest.mark.parametrize("role", [User.Role.AGENT, User.Role.SUPERVISOR])
def test_console_users_are_sent_to_the_admin_login(
    world: dict[str, Model],
    role: str,
    support: Team,  # noqa: F811
) -> None:
    user = accounts_services.user_create(
        username=f"console.{role}", password=PASSWORD, role=role, teams=[support]
    )
    client = client_for(user)

    for page in ["/admin/"] + [url(obj) for obj in world.values()]:
        response = client.get(page)
        assert (response.status_code, response.headers["Location"].split("?")[0]) == (
            302,
            "/admin/login/",
        ), page


def test_the_staff_flag_alone_grants_nothing(world: dict[str, Model]) -> None:
    # Someone ticked is_staff in the database for an agent: Django lets them
    # log in to admin, and then they see and change nothing.
    user = User.objects.create_user(username="agente.staff", password=None, is_staff=True)
    client = client_for(user)

    index = client.get("/admin/")

    assert index.status_code == 200
    assert index.context["app_list"] == []
    for obj in world.values():
        assert client.get(url(obj)).status_code == 403, obj._meta.label
        assert client.get(url(obj, "change", obj.pk)).status_code == 403, obj._meta.label


# --- Users: the role rules of accounts.services ------------------------------------------------


def add_user(client: Client, username: str, role: str) -> HttpResponse:
    return client.post(
        url(User, "add"),
        {
            "username": username,
            "usable_password": "true",
            "password1": "Cavalo-Bateria-42",
            "password2": "Cavalo-Bateria-42",
            "name": username.title(),
            "email": "",
            "role": role,
            "Team_members-TOTAL_FORMS": "0",
            "Team_members-INITIAL_FORMS": "0",
            "Team_members-MIN_NUM_FORMS": "0",
            "Team_members-MAX_NUM_FORMS": "1000",
        },
    )


@pytest.mark.parametrize(("role", "staff"), [("admin", True), ("supervisor", False)])
def test_an_added_user_may_use_admin_exactly_when_an_admin(
    admin_client: Client, role: str, staff: bool
) -> None:
    response = add_user(admin_client, "novo.usuario", role)

    user = User.objects.get(username="novo.usuario")
    assert response.status_code == 302
    assert (user.role, user.is_staff, user.is_superuser) == (role, staff, False)


def change_user(client: Client, user: User, **changes: Any) -> HttpResponse:
    page = client.get(url(user, "change", user.pk))
    return client.post(url(user, "change", user.pk), form_data(page, **changes))


def test_a_role_change_goes_through_the_service(
    admin_client: Client,
    agent: User,  # noqa: F811
) -> None:
    promoted = change_user(admin_client, agent, role="admin")
    agent.refresh_from_db()
    assert promoted.status_code == 302
    assert (agent.role, agent.is_staff) == ("admin", True)

    demoted = change_user(admin_client, agent, role="agent")
    agent.refresh_from_db()
    assert demoted.status_code == 302
    assert (agent.role, agent.is_staff) == ("agent", False)


def test_an_admin_cannot_change_their_own_role(admin_client: Client, helpdesk_admin: User) -> None:
    response = change_user(admin_client, helpdesk_admin, role="agent")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "role": ["You cannot change your own role."]
    }
    helpdesk_admin.refresh_from_db()
    assert (helpdesk_admin.role, helpdesk_admin.is_staff) == ("admin", True)


def test_nobody_gives_a_role_above_their_own(
    supervisor: User,  # noqa: F811
    agent: User,  # noqa: F811
) -> None:
    # A superuser gave a supervisor Django's permissions on users: the rank
    # rule still holds on the form.
    supervisor.is_staff = True
    supervisor.save()
    supervisor.user_permissions.set(
        Permission.objects.filter(codename__in=["view_user", "change_user", "add_user"])
    )
    client = client_for(User.objects.get(pk=supervisor.pk))

    changed = change_user(client, agent, role="admin")
    added = add_user(client, "novo.admin", "admin")

    assert changed.context["adminform"].form.errors == {
        "role": ["You cannot give a role above your own."]
    }
    assert added.context["adminform"].form.errors == {
        "role": ["You cannot give a role above your own."]
    }
    agent.refresh_from_db()
    assert agent.role == "agent"
    assert not User.objects.filter(username="novo.admin").exists()


def test_only_a_superuser_makes_superusers(
    admin_client: Client,
    root_client: Client,
    agent: User,  # noqa: F811
    root: User,
) -> None:
    page = admin_client.get(url(agent, "change", agent.pk))
    assert "is_superuser" not in page.context["adminform"].form.fields

    change_user(admin_client, agent, is_superuser="on", is_staff="on")
    agent.refresh_from_db()
    assert (agent.is_superuser, agent.is_staff) == (False, False)
    # The superuser's own pages are read-only to an admin, password included.
    assert change_user(admin_client, root, name="Outro").status_code == 403
    assert admin_client.get(url(root, "password", root.pk)).status_code == 403

    deactivate = admin_client.post(
        url(User), {"action": "deactivate", "_selected_action": [root.pk]}, follow=True
    )
    assert flashed(deactivate) == [
        ("error", "root.ops: Only a superuser may deactivate a superuser.")
    ]
    root.refresh_from_db()
    assert root.is_active

    change_user(root_client, agent, is_superuser="on")
    agent.refresh_from_db()
    assert (agent.is_superuser, agent.is_staff) == (True, True)


def test_unticking_active_deactivates_through_the_service(
    admin_client: Client,
    helpdesk_admin: User,
    agent: User,  # noqa: F811
) -> None:
    accounts_services.user_update(user=agent, actor=None, availability="online")
    token = RefreshToken.for_user(agent)

    response = change_user(admin_client, agent, is_active=None)
    myself = change_user(admin_client, helpdesk_admin, is_active=None)

    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.is_active, agent.availability) == (False, "offline")
    with pytest.raises(TokenError, match="blacklisted"):
        RefreshToken(str(token))
    assert myself.context["adminform"].form.errors == {
        "is_active": ["You cannot deactivate yourself."]
    }


def test_availability_set_in_admin_is_timestamped(
    admin_client: Client,
    agent: User,  # noqa: F811
) -> None:
    response = change_user(admin_client, agent, availability="away")

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.availability == "away"
    assert agent.availability_changed_at is not None


def test_a_password_set_in_admin_logs_the_user_out_of_the_api(
    admin_client: Client,
    agent: User,  # noqa: F811
) -> None:
    token = RefreshToken.for_user(agent)
    weak = admin_client.post(
        url(agent, "password", agent.pk), {"password1": "abcdefghijk", "password2": "abcdefghijk"}
    )
    assert weak.status_code == 200

    response = admin_client.post(
        url(agent, "password", agent.pk),
        {"password1": "Cavalo-Bateria-42", "password2": "Cavalo-Bateria-42"},
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("Cavalo-Bateria-42")
    with pytest.raises(TokenError, match="blacklisted"):
        RefreshToken(str(token))


def test_users_are_deactivated_not_deleted(
    admin_client: Client,
    root_client: Client,
    agent: User,  # noqa: F811
) -> None:
    assert admin_client.get(url(agent, "delete", agent.pk)).status_code == 403
    actions = admin_client.get(url(User)).context["action_form"].fields["action"].choices
    assert [name for name, _label in actions] == ["", "deactivate", "activate"]
    assert root_client.get(url(agent, "delete", agent.pk)).status_code == 200


def test_a_refresh_token_is_never_shown(
    root_client: Client,
    agent: User,  # noqa: F811
) -> None:
    token = RefreshToken.for_user(agent)
    row = OutstandingToken.objects.get(jti=token["jti"])

    pages = [root_client.get(url(row)), root_client.get(url(row, "change", row.pk))]

    for page in pages:
        assert page.status_code == 200
        assert str(token) not in page.text
    assert token["jti"] in pages[1].text


# --- Configuration pages ---------------------------------------------------------------------


def test_a_tag_colour_must_be_a_hex_colour(admin_client: Client) -> None:
    bad = admin_client.post(url(Tag, "add"), {"name": "vip", "color": '"><b>x'})
    good = admin_client.post(url(Tag, "add"), {"name": "vip", "color": "#0EA5E9"})

    assert bad.context["adminform"].form.errors == {
        "color": ["Enter a colour as # and six hex digits, e.g. #0ea5e9."]
    }
    assert good.status_code == 302
    assert Tag.objects.get().color == "#0ea5e9"
    listing = admin_client.get(url(Tag)).content.decode()
    assert 'fill="#0ea5e9"' in listing
    assert "style=" not in listing.split('id="result_list"')[1].split("</table>")[0]


def test_deleting_a_canned_reply_goes_through_the_service(
    admin_client: Client, world: dict[str, Model]
) -> None:
    reply = world["conversations.CannedReply"]

    response = admin_client.post(url(reply, "delete", reply.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not CannedReply.objects.filter(pk=reply.pk).exists()


def test_a_document_message_page_shows_its_file_name_and_payload(
    admin_client: Client,
    receive: Callable[..., Message],  # noqa: F811
) -> None:
    message = receive(
        "Segue o comprovante",
        kind="document",
        media_id="media-9",
        media_mime_type="application/pdf",
        payload={"type": "document", "document": {"id": "media-9", "filename": "comprovante.pdf"}},
    )

    page = admin_client.get(url(message, "change", message.pk))

    assert page.status_code == 200
    assert "comprovante.pdf" in page.text
    assert "&quot;media-9&quot;" in page.text  # the received payload, as JSON
    conversation_page = admin_client.get(url(Conversation, "change", message.conversation_id))
    assert "comprovante.pdf" in conversation_page.text


def test_contract_and_invoice_lists_name_the_subscriber(
    admin_client: Client, world: dict[str, Model]
) -> None:
    contract = world["subscribers.Contract"]
    assert isinstance(contract, Contract)
    make_invoice(code="F2", contract=contract, due_date=date.today() + timedelta(days=30))

    invoices = listed(admin_client.get("/admin/subscribers/invoice/"))

    # Newest due date first: the invoice a customer asks about.
    assert [invoice.code for invoice in invoices] == ["F2", "F1"]


def test_autocomplete_works_for_an_admin(admin_client: Client, world: dict[str, Model]) -> None:
    # Tags on a conversation, teams on a user: both answered by the admin of
    # the related model, which must let an admin (not only a superuser) read.
    tags = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "conversations", "model_name": "conversation", "field_name": "tags"},
    )
    teams = admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "accounts", "model_name": "team_members", "field_name": "team"},
    )

    assert tags.status_code == 200
    assert [r["text"] for r in tags.json()["results"]] == ["lentidão"]
    assert teams.status_code == 200
    assert [r["text"] for r in teams.json()["results"]] == ["Suporte técnico"]
