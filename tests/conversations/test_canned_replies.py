"""Canned replies: placeholders filled for the conversation, unknown ones
refused when the reply is saved, and who may manage and use which."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from accounts.models import Team, User
from conversations.models import CannedReply, Contact, Conversation
from conversations.selectors import canned_replies_for
from conversations.services import (
    canned_reply_create,
    canned_reply_render,
    canned_reply_update,
)

ALLOWED = (
    "{{agent.name}}, {{contact.customer_code}}, {{contact.first_name}}, {{contact.name}}, "
    "{{conversation.protocol}}"
)
MAY_NOT_MANAGE = "Only administrators manage shared canned replies; supervisors, their teams' ones."


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


def test_render_fills_every_placeholder(
    admin: User, agent: User, conversation: Conversation, contact: Contact
) -> None:
    contact.customer_code = "C-0042"
    contact.save(update_fields=["customer_code"])
    reply = canned_reply_create(
        shortcut="ola",
        title="Saudação",
        text=(
            "Olá {{contact.first_name}} ({{ contact.name }}, cliente {{contact.customer_code}}), "
            "sou {{agent.name}}. Protocolo {{conversation.protocol}}."
        ),
        team=None,
        actor=admin,
    )

    text = canned_reply_render(reply, conversation=conversation, actor=agent)

    assert text == (
        f"Olá Maria (Maria Souza, cliente C-0042), sou Bruno. Protocolo {conversation.protocol}."
    )


def test_staff_name_wins_over_the_whatsapp_profile_name(
    admin: User, agent: User, conversation: Conversation, contact: Contact
) -> None:
    contact.name = "Maria Aparecida Souza"
    contact.save(update_fields=["name"])
    reply = canned_reply_create(
        shortcut="ola", title="Oi", text="Oi {{contact.first_name}}!", team=None, actor=admin
    )

    assert canned_reply_render(reply, conversation=conversation, actor=agent) == "Oi Maria!"


def test_a_contact_without_a_name_is_not_called_by_their_number(
    admin: User, agent: User, conversation: Conversation, contact: Contact
) -> None:
    Contact.objects.filter(pk=contact.pk).update(profile_name="")
    conversation.refresh_from_db()
    reply = canned_reply_create(
        shortcut="ola", title="Oi", text="Olá {{contact.name}}!", team=None, actor=admin
    )

    assert canned_reply_render(reply, conversation=conversation, actor=agent) == "Olá !"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Olá {{cliente.nome}}", "{{cliente.nome}}"),
        ("Olá {{contact.nome}} e {{agent.email}}", "{{agent.email}}, {{contact.nome}}"),
        ("Olá {{nome}}", "{{nome}}"),
        ("Olá {{ Contact.Name }}", "{{Contact.Name}}"),
    ],
)
def test_an_unknown_placeholder_is_refused(admin: User, text: str, names: str) -> None:
    with pytest.raises(ValidationError) as exc:
        canned_reply_create(shortcut="ola", title="Oi", text=text, team=None, actor=admin)

    assert exc.value.message_dict == {"text": [f"Unknown placeholder {names}; use {ALLOWED}."]}
    assert not CannedReply.objects.exists()


def test_an_unknown_placeholder_is_refused_on_update(admin: User) -> None:
    reply = canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=None, actor=admin)

    with pytest.raises(ValidationError) as exc:
        canned_reply_update(reply=reply, actor=admin, text="Oi {{cliente.nome}}")

    assert exc.value.message_dict == {
        "text": [f"Unknown placeholder {{{{cliente.nome}}}}; use {ALLOWED}."]
    }
    reply.refresh_from_db()
    assert reply.text == "Oi!"


def test_a_shortcut_is_used_once_per_team(admin: User, support: Team) -> None:
    canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=support, actor=admin)
    canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=None, actor=admin)

    with pytest.raises(ValidationError) as exc:
        canned_reply_create(shortcut="ola", title="Outro", text="Oi?", team=support, actor=admin)

    assert exc.value.message_dict == {"shortcut": ["This shortcut is already in use."]}
    assert CannedReply.objects.count() == 2


# --- who may manage -------------------------------------------------------------------


def test_an_agent_manages_no_canned_reply(agent: User, support: Team) -> None:
    with pytest.raises(PermissionDenied) as exc:
        canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=support, actor=agent)

    assert str(exc.value) == MAY_NOT_MANAGE
    assert not CannedReply.objects.exists()


def test_a_supervisor_manages_their_teams_replies_only(
    supervisor: User, support: Team, finance: Team
) -> None:
    reply = canned_reply_create(
        shortcut="ola", title="Oi", text="Oi!", team=support, actor=supervisor
    )
    assert reply.created_by == supervisor

    with pytest.raises(PermissionDenied):
        canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=finance, actor=supervisor)
    with pytest.raises(PermissionDenied):
        canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=None, actor=supervisor)
    with pytest.raises(PermissionDenied):
        canned_reply_update(reply=reply, actor=supervisor, team=finance)

    reply.refresh_from_db()
    assert reply.team == support


def test_a_supervisor_cannot_take_over_a_shared_reply(
    admin: User, supervisor: User, support: Team
) -> None:
    shared = canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=None, actor=admin)

    with pytest.raises(PermissionDenied):
        canned_reply_update(reply=shared, actor=supervisor, team=support)

    shared.refresh_from_db()
    assert shared.team is None


# --- who may use ----------------------------------------------------------------------


def test_each_team_sees_shared_replies_and_its_own(
    admin: User, agent: User, outsider: User, support: Team, finance: Team
) -> None:
    canned_reply_create(shortcut="ola", title="Oi", text="Oi!", team=None, actor=admin)
    canned_reply_create(
        shortcut="onu", title="ONU", text="Reinicie a ONU", team=support, actor=admin
    )
    canned_reply_create(shortcut="boleto", title="Boleto", text="2ª via", team=finance, actor=admin)

    def shortcuts(user: User) -> list[str]:
        return [reply.shortcut for reply in canned_replies_for(user)]

    assert shortcuts(agent) == ["ola", "onu"]
    assert shortcuts(outsider) == ["boleto", "ola"]
    assert shortcuts(admin) == ["boleto", "ola", "onu"]
