"""manage.py seed_demo: configuration, staff, customers and consistent conversations."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min
from django.utils import timezone
from validate_docbr import CPF

from accounts.models import Team, User
from conversations import services
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Tag,
    TeamQueue,
)
from ispsupport.identity import canonical_phone

PASSWORD = "Demo-Senha-2024x"
STAFF = {
    "joana.ribeiro": ("agent", ["Suporte técnico"]),
    "marcos.oliveira": ("agent", ["Suporte técnico"]),
    "patricia.lima": ("agent", ["Suporte técnico"]),
    "renato.alves": ("agent", ["Financeiro"]),
    "camila.santos": ("agent", ["Comercial", "Financeiro"]),
    "thiago.pereira": ("agent", ["Comercial"]),
    "luciana.costa": ("supervisor", ["Comercial", "Financeiro", "Suporte técnico"]),
}


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(**options: Any) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"password": PASSWORD, **options})
    return out.getvalue()


@pytest.mark.django_db
def test_seed_creates_the_configuration_and_staff() -> None:
    seed(conversations=50)

    assert list(Team.objects.values_list("name", flat=True)) == [
        "Comercial",
        "Financeiro",
        "Suporte técnico",
    ]
    assert TeamQueue.objects.count() == 3
    inbox = Inbox.objects.get()
    assert (inbox.name, inbox.default_team.name) == ("WhatsApp", "Suporte técnico")
    staff = {
        user.username: (user.role, sorted(t.name for t in user.teams.all()))
        for user in User.objects.prefetch_related("teams")
    }
    assert staff == STAFF
    assert User.objects.get(username="joana.ribeiro").check_password(PASSWORD)
    assert sorted(Tag.objects.values_list("name", flat=True)) == [
        "boleto",
        "cancelamento",
        "lentidão",
        "mudança-de-plano",
        "sem-conexão",
    ]
    reinicie = CannedReply.objects.get(shortcut="reinicie")
    assert (reinicie.title, reinicie.team.name) == ("Reiniciar o roteador", "Suporte técnico")
    assert "{{contact.first_name}}" in reinicie.text
    assert CannedReply.objects.get(shortcut="boleto").title == "Segunda via do boleto"


@pytest.mark.django_db
def test_seed_creates_consistent_conversations() -> None:
    output = seed(conversations=50)

    conversations = Conversation.objects.annotate(
        messages_total=Count("messages"),
        newest=Max("messages__created_at"),
        oldest=Min("messages__created_at"),
    )
    assert conversations.count() == 50
    assert Contact.objects.filter(customer_code__startswith="DEMO-").count() == 38
    assert set(conversations.values_list("state", flat=True)) == set(Conversation.State.values)
    protocols = set()
    for conversation in conversations:
        assert 2 <= conversation.messages_total <= 8
        assert conversation.last_message_at == conversation.newest
        assert conversation.created_at == conversation.oldest
        assert re.fullmatch(r"\d{8}-\d{6}", conversation.protocol)
        assert conversation.protocol == (
            f"{timezone.localdate(conversation.created_at):%Y%m%d}-{conversation.pk:06d}"
        )
        protocols.add(conversation.protocol)
        inbound = conversation.messages.filter(direction=Message.Direction.IN)
        assert conversation.last_inbound_at == max(m.created_at for m in inbound)
        if conversation.state == "resolved":
            assert conversation.unread_count == 0
            assert conversation.resolved_at >= conversation.last_message_at
        if conversation.state in ("bot", "queued"):
            assert conversation.assignee is None
        else:
            assert conversation.assignee.teams.filter(pk=conversation.team_id).exists()
        if conversation.state == "pending":
            assert conversation.messages.last().sender_type == "agent"
    assert len(protocols) == 50
    # One unresolved conversation per contact at most (the database enforces it too).
    active = Conversation.objects.exclude(state="resolved").values("contact")
    assert active.annotate(n=Count("id")).filter(n__gt=1).count() == 0
    assert re.search(
        r"^Demo data ready in \d+\.\d s: 3 teams, 7 staff, 5 tags, 4 canned replies, "
        r"38 new contacts, 50 conversations \(bot \d+, open \d+, pending \d+, queued \d+, "
        r"resolved \d+\), \d+ messages, \d+ notes\.$",
        output,
        re.MULTILINE,
    )
    assert "Conversations: 50/50 (" in output


@pytest.mark.django_db
def test_contacts_without_the_ninth_digit_are_one_contact() -> None:
    seed(conversations=50)
    old = [
        c for c in Contact.objects.filter(customer_code__startswith="DEMO-") if len(c.wa_id) == 12
    ]

    assert old
    for contact in old:
        assert canonical_phone(contact.wa_id) == contact.phone
        assert contact.phone == f"+{contact.wa_id[:4]}9{contact.wa_id[4:]}"
        before = Contact.objects.count()
        assert services.contact_resolve(wa_id=contact.phone.lstrip("+")) == contact
        assert services.contact_resolve(wa_id=contact.wa_id) == contact
        assert Contact.objects.count() == before


@pytest.mark.django_db
def test_a_few_contacts_have_a_valid_cpf() -> None:
    seed(conversations=50)
    with_cpf = list(Contact.objects.exclude(document_encrypted=""))

    assert len(with_cpf) == 20
    for contact in with_cpf:
        assert CPF().validate(contact.document)
        assert services.contact_find_by_document(contact.document) == contact


@pytest.mark.django_db
def test_seed_runs_again_without_duplicating() -> None:
    seed(conversations=50)

    output = seed(conversations=50)

    assert "50 demo conversations exist already; nothing added" in output
    assert (Conversation.objects.count(), User.objects.count(), Team.objects.count()) == (
        50,
        7,
        3,
    )


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_data() -> None:
    def snapshot() -> list[tuple[Any, ...]]:
        return list(
            Conversation.objects.order_by("pk").values_list(
                "contact__customer_code", "state", "team__name", "assignee__username", "priority"
            )
        )

    seed(conversations=30, seed=7)
    first = snapshot()
    seed(conversations=30, seed=7, reset=True, commit=True)

    assert snapshot() == first


def test_reset_deletes_only_the_demo(
    receive: Callable[..., Message], conversation: Conversation
) -> None:
    seed(conversations=20)

    dry_run = seed(conversations=0, reset=True)
    assert re.search(
        r"--reset would delete 20 conversations, \d+ messages and 15 contacts of the demo "
        r"\(customer code DEMO-…\)\. Nothing deleted: add --commit to do it\.",
        dry_run,
    )
    assert Conversation.objects.count() == 21

    output = seed(conversations=0, reset=True, commit=True)

    assert re.search(
        r"Reset: deleted 20 conversations, \d+ messages, \d+ notes and 15 contacts of the demo\.",
        output,
    )
    assert list(Conversation.objects.all()) == [conversation]
    assert list(Contact.objects.all()) == [conversation.contact]
    assert Message.objects.filter(conversation=conversation).count() == 1


@pytest.mark.django_db
def test_a_generated_password_is_printed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)

    first = seed(conversations=0, password="")
    second = seed(conversations=0, password="")

    [password] = re.findall(r"Demo staff password \(shown only once\): (\S+)", first)
    assert User.objects.get(username="luciana.costa").check_password(password)
    assert "password" not in second


@pytest.mark.django_db
def test_the_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "Outra-Senha-99x")

    output = seed(conversations=0, password="")

    assert "shown only once" not in output
    assert User.objects.get(username="thiago.pereira").check_password("Outra-Senha-99x")


@pytest.mark.django_db
def test_a_weak_password_is_refused() -> None:
    with pytest.raises(CommandError, match=r"^Password refused for joana\.ribeiro: "):
        seed(conversations=0, password="senha")

    assert not User.objects.exists()
