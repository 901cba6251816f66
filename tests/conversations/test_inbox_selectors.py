"""Who sees which conversation, the inbox filters, and the inbox in a fixed
number of queries whatever its size."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from accounts.models import Team, User
from conversations.models import Contact, Conversation, Inbox, Message, Tag
from conversations.selectors import (
    contact_get_for,
    contact_search,
    contacts_visible_to,
    conversation_get_for,
    conversations_visible_to,
    inbox_list,
)
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    conversation_set_tags,
    message_send,
)

State = Conversation.State
Receive = Callable[..., Message]


@pytest.fixture
def finance_inbox(finance: Team) -> Inbox:
    return Inbox.objects.create(name="WhatsApp Financeiro", default_team=finance)


@pytest.fixture
def billing(receive: Receive, finance_inbox: Inbox) -> Conversation:
    return receive(
        "Quero a segunda via", wa_id="5521977776666", inbox=finance_inbox, profile_name="João Lima"
    ).conversation


def ids(rows: object) -> set[int]:
    return {row.pk for row in rows}  # type: ignore[attr-defined]


# --- visibility -----------------------------------------------------------------------


def test_each_team_sees_its_own_conversations(
    agent: User, outsider: User, conversation: Conversation, billing: Conversation
) -> None:
    assert ids(conversations_visible_to(agent)) == {conversation.pk}
    assert ids(conversations_visible_to(outsider)) == {billing.pk}


def test_the_top_role_sees_every_team(
    admin: User, conversation: Conversation, billing: Conversation
) -> None:
    assert ids(conversations_visible_to(admin)) == {conversation.pk, billing.pk}


def test_supervisors_see_their_teams_only(
    supervisor: User, conversation: Conversation, billing: Conversation
) -> None:
    assert ids(conversations_visible_to(supervisor)) == {conversation.pk}


def test_an_assignee_sees_their_conversation_in_another_team(
    outsider: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(assignee=outsider)

    assert conversation.pk in ids(conversations_visible_to(outsider))


def test_get_for_gives_a_visible_conversation_with_its_relations(
    agent: User, conversation: Conversation, django_assert_num_queries: Callable[..., object]
) -> None:
    with django_assert_num_queries(1):  # type: ignore[operator]
        found = conversation_get_for(agent, str(conversation.pk))
        assert (found.contact.wa_id, found.team.name, found.inbox.name, found.assignee) == (
            "5511988887777",
            "Suporte técnico",
            "WhatsApp Suporte",
            None,
        )


@pytest.mark.parametrize("pk", ["own", "missing", "abc", None])
def test_get_for_hides_what_the_user_may_not_see(
    outsider: User, conversation: Conversation, pk: str | None
) -> None:
    value = {"own": conversation.pk, "missing": conversation.pk + 1000}.get(str(pk), pk)

    with translation.override("en"), pytest.raises(Http404) as exc:
        conversation_get_for(outsider, value)  # type: ignore[arg-type]

    assert str(exc.value) == "No such conversation."


def test_contacts_follow_their_conversations(
    agent: User, outsider: User, admin: User, conversation: Conversation, billing: Conversation
) -> None:
    assert ids(contacts_visible_to(agent)) == {conversation.contact_id}
    assert ids(contacts_visible_to(outsider)) == {billing.contact_id}
    lonely = Contact.objects.create(bsuid="BR.nobody")
    assert ids(contacts_visible_to(admin)) == {
        conversation.contact_id,
        billing.contact_id,
        lonely.pk,
    }
    assert contact_get_for(agent, conversation.contact_id) == conversation.contact
    with pytest.raises(Http404):
        contact_get_for(outsider, conversation.contact_id)
    with pytest.raises(Http404):
        contact_get_for(agent, "x")


def test_contact_search(conversation: Conversation, billing: Conversation) -> None:
    maria = conversation.contact
    maria.customer_code = "C-0042"
    maria.username = "maria.fibra"
    maria.save(update_fields=["customer_code", "username"])
    everyone = Contact.objects.all()

    assert ids(contact_search(everyone, "souza")) == {maria.pk}
    assert ids(contact_search(everyone, "c-0042")) == {maria.pk}
    assert ids(contact_search(everyone, "@maria.fibra")) == {maria.pk}
    assert ids(contact_search(everyone, "98888-7777")) == {maria.pk}
    assert ids(contact_search(everyone, "777")) == set()  # too few digits for a phone
    assert ids(contact_search(everyone, "  ")) == ids(everyone)


# --- filters --------------------------------------------------------------------------


@pytest.fixture
def inbox_rows(
    agent: User, teammate: User, receive: Receive, support: Team
) -> dict[str, Conversation]:
    mine = receive("Sem sinal", wa_id="5511911110001").conversation
    theirs = receive("Lentidão", wa_id="5511911110002").conversation
    waiting = receive("Roteador piscando vermelho", wa_id="5511911110003").conversation
    done = receive("Obrigado", wa_id="5511911110004").conversation
    conversation_assign(conversation=mine, agent=agent, actor=agent)
    conversation_assign(conversation=theirs, agent=teammate, actor=teammate)
    conversation_resolve(conversation=done, actor=agent)
    Tag.objects.create(name="lentidao")
    conversation_set_tags(conversation=theirs, names=["lentidao"], actor=agent)
    return {"mine": mine, "theirs": theirs, "waiting": waiting, "done": done}


def test_filter_by_state(agent: User, inbox_rows: dict[str, Conversation]) -> None:
    rows = inbox_rows

    assert ids(inbox_list(user=agent, state="queued")) == {rows["waiting"].pk}
    assert ids(inbox_list(user=agent, state=["open", "resolved"])) == {
        rows["mine"].pk,
        rows["theirs"].pk,
        rows["done"].pk,
    }
    assert len(inbox_list(user=agent)) == 4


def test_filter_by_assignee(
    agent: User, teammate: User, inbox_rows: dict[str, Conversation]
) -> None:
    rows = inbox_rows

    assert ids(inbox_list(user=agent, assignee="me")) == {rows["mine"].pk}
    assert ids(inbox_list(user=agent, assignee="none")) == {rows["waiting"].pk, rows["done"].pk}
    assert ids(inbox_list(user=agent, assignee=str(teammate.pk))) == {rows["theirs"].pk}
    assert len(inbox_list(user=agent, assignee="any")) == 4


def test_filter_by_team_and_tag(
    admin: User, support: Team, billing: Conversation, inbox_rows: dict[str, Conversation]
) -> None:
    assert ids(inbox_list(user=admin, team=billing.team_id)) == {billing.pk}
    assert len(inbox_list(user=admin, team=support.pk)) == 4
    assert ids(inbox_list(user=admin, tag="lentidao")) == {inbox_rows["theirs"].pk}
    assert ids(inbox_list(user=admin, tag="nenhuma")) == set()


def test_search_by_protocol_name_phone_and_text(
    agent: User, inbox_rows: dict[str, Conversation]
) -> None:
    rows = inbox_rows

    assert ids(inbox_list(user=agent, q=rows["waiting"].protocol)) == {rows["waiting"].pk}
    assert ids(inbox_list(user=agent, q="(11) 91111-0002")) == {rows["theirs"].pk}
    assert ids(inbox_list(user=agent, q="piscando")) == {rows["waiting"].pk}
    assert len(inbox_list(user=agent, q="maria souza")) == 4
    assert ids(inbox_list(user=agent, q="nada disso")) == set()


def test_filters_never_reveal_another_teams_conversations(
    outsider: User, inbox_rows: dict[str, Conversation]
) -> None:
    assert ids(inbox_list(user=outsider, q="Sem sinal")) == set()
    assert ids(inbox_list(user=outsider, tag="lentidao")) == set()


def test_each_row_carries_its_last_message(
    agent: User, inbox_rows: dict[str, Conversation]
) -> None:
    message_send(conversation=inbox_rows["mine"], actor=agent, text="Vou verificar")

    rows = {row.pk: row for row in inbox_list(user=agent)}

    mine = rows[inbox_rows["mine"].pk]
    assert (mine.last_message_text, mine.last_message_kind, mine.last_message_direction) == (
        "Vou verificar",
        "text",
        "out",
    )
    waiting = rows[inbox_rows["waiting"].pk]
    assert (waiting.last_message_text, waiting.last_message_direction) == (
        "Roteador piscando vermelho",
        "in",
    )


# --- query count ----------------------------------------------------------------------


def _render_inbox(user: User) -> list[tuple[object, ...]]:
    return [
        (
            row.protocol,
            row.contact.display_name,
            row.team.name if row.team else "",
            row.assignee.display_name if row.assignee else "",
            row.inbox.name,
            [tag.name for tag in row.tags.all()],
            row.last_message_text,
            row.last_message_kind,
            row.last_message_direction,
        )
        for row in inbox_list(user=user, state=["queued", "open"])
    ]


def test_the_inbox_costs_the_same_queries_for_1_10_and_100_conversations(
    agent: User, teammate: User, receive: Receive
) -> None:
    tags = [Tag.objects.create(name="fibra"), Tag.objects.create(name="vip")]
    made = 0

    def grow_to(total: int) -> None:
        nonlocal made
        while made < total:
            conversation = receive("Sem sinal", wa_id=f"551191{made:07d}").conversation
            # Unassigned, the agent's and the teammate's rows, with 0, 1 or 2 tags.
            if made % 3:
                someone = agent if made % 3 == 1 else teammate
                conversation_assign(conversation=conversation, agent=someone, actor=someone)
            conversation.tags.set(tags[: made % 3])
            made += 1

    counts = {}
    for total in (1, 10, 100):
        grow_to(total)
        with CaptureQueriesContext(connection) as queries:
            rendered = _render_inbox(agent)
        assert len(rendered) == total
        counts[total] = len(queries)

    # One query for the page, one for the tags of every row on it.
    assert counts == {1: 2, 10: 2, 100: 2}
