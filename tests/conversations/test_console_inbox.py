"""The console inbox at /console/: tabs per role, filters and search, the
row fragments behind the live list, escaping of customer text, and a fixed
number of queries whatever the list's size."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Contact, Conversation, Inbox, Message, Tag
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    conversation_set_tags,
    conversation_transfer,
    message_send,
)
from conversations.views.inbox import iso

State = Conversation.State
Receive = Callable[..., Message]

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TEXT = "<script>alert(1)</script>"


# --- helpers ------------------------------------------------------------------------


def as_user(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def page(client: Client, query: str = "") -> str:
    response = client.get(f"/console/{query}")
    assert response.status_code == 200
    return response.content.decode()


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li id="row-(\d+)"', html)]


def counts(response: object) -> dict[str, int]:
    return json.loads(response["X-Inbox-Counts"])  # type: ignore[index]


def queued(receive: Receive, n: int, *, minutes_ago: float = 0, **kwargs: object) -> Conversation:
    """A queued conversation of its own customer, queued ``minutes_ago``."""
    kwargs.setdefault("profile_name", f"Cliente {n}")
    conversation = receive(wa_id=f"55119200{n:05d}", **kwargs).conversation
    Conversation.objects.filter(pk=conversation.pk).update(
        queued_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    conversation.refresh_from_db()
    return conversation


def make_conversations(count: int, *, inbox: Inbox, team: Team, assignee: User) -> None:
    """``count`` conversations, half assigned and half queued, each with its own
    contact, two messages and two tags."""
    now = timezone.now()
    tags = [Tag.objects.get_or_create(name=name)[0] for name in ("fibra", "vip")]
    start = Contact.objects.count()
    contacts = Contact.objects.bulk_create(
        Contact(wa_id=f"55118{start + n:08d}", phone=f"+55118{start + n:08d}", name=f"C{n}")
        for n in range(count)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(
            contact=contact,
            inbox=inbox,
            team=team,
            assignee=assignee if n % 2 else None,
            state=State.OPEN if n % 2 else State.QUEUED,
            protocol=f"Q-{contact.wa_id}",
            priority=Conversation.Priority.URGENT if n % 3 == 0 else Conversation.Priority.NORMAL,
            last_message_at=now - timedelta(seconds=n),
            last_inbound_at=now - timedelta(seconds=n),
            queued_at=now - timedelta(minutes=n),
            first_response_due_at=now - timedelta(minutes=1),
            unread_count=n % 4,
        )
        for n, contact in enumerate(contacts)
    )
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            direction=direction,
            sender_type=Message.SenderType.CONTACT
            if direction == Message.Direction.IN
            else Message.SenderType.AGENT,
            sender_user=None if direction == Message.Direction.IN else assignee,
            kind=Message.Kind.IMAGE if i else Message.Kind.TEXT,
            text=f"{direction} {conversation.protocol}",
            status=Message.Status.RECEIVED,
            created_at=now - timedelta(seconds=10 - i),
        )
        for conversation in conversations
        for i, direction in enumerate([Message.Direction.IN, Message.Direction.OUT])
    )
    Through = Conversation.tags.through
    Through.objects.bulk_create(
        Through(conversation_id=conversation.pk, tag_id=tag.pk)
        for conversation in conversations
        for tag in tags
    )


@pytest.fixture
def finance_inbox(finance: Team) -> Inbox:
    return Inbox.objects.create(name="WhatsApp Financeiro", default_team=finance)


@pytest.fixture
def billing(receive: Receive, finance_inbox: Inbox) -> Conversation:
    """Financeiro's conversation: never for Suporte's people."""
    return receive(
        "Quero a segunda via", wa_id="5521977776666", inbox=finance_inbox, profile_name="João Lima"
    ).conversation


@pytest.fixture
def mine(receive: Receive, agent: User) -> Conversation:
    conversation = receive("Sem sinal desde ontem", wa_id="5511911112222", profile_name="Rita")
    return conversation_assign(conversation=conversation.conversation, agent=agent, actor=agent)


# --- access ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/", "/console/rows/", "/console/row/1/"])
def test_login_required(client: Client, db: None, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


# --- tabs per role --------------------------------------------------------------------


def test_agent_has_mine_and_queue_tabs_only(agent: User, conversation: Conversation) -> None:
    html = page(as_user(agent))

    assert re.search(
        r'<a href="\?tab=mine" class="inbox-tab" data-tab="mine" aria-current="page">', html
    )
    assert 'data-tab="queue"' in html
    assert 'href="?tab=all"' not in html
    assert "<title>Mine · Inbox · ISP Support</title>" in html


def test_agent_asking_for_all_gets_their_own_list(
    agent: User, mine: Conversation, conversation: Conversation
) -> None:
    client = as_user(agent)

    html = page(client, "?tab=all")

    assert row_ids(html) == [mine.pk]
    assert 'data-tab="mine" aria-current="page"' in html
    response = client.get(f"/console/row/{conversation.pk}/?tab=all")
    assert response.status_code == 204  # queued, not mine: the "all" tab is not theirs
    assert set(counts(response)) == {"mine", "queue"}


def test_mine_is_my_unresolved_conversations(
    agent: User, teammate: User, receive: Receive, mine: Conversation, conversation: Conversation
) -> None:
    done = receive("Obrigado", wa_id="5511933334444").conversation
    conversation_assign(conversation=done, agent=agent, actor=agent)
    conversation_resolve(conversation=done, actor=agent)
    theirs = receive("Oi", wa_id="5511955556666").conversation
    conversation_assign(conversation=theirs, agent=teammate, actor=teammate)

    html = page(as_user(agent), "?tab=mine")

    assert row_ids(html) == [mine.pk]
    assert '<span class="tab-count" data-count="mine">1</span>' in html
    assert '<span class="tab-count" data-count="queue">1</span>' in html


def test_queue_is_oldest_first_with_its_waiting_time(
    agent: User, receive: Receive, mine: Conversation, billing: Conversation
) -> None:
    newest = queued(receive, 1, minutes_ago=1)
    oldest = queued(receive, 2, minutes_ago=45)
    middle = queued(receive, 3, minutes_ago=10)

    html = page(as_user(agent), "?tab=queue")

    assert row_ids(html) == [oldest.pk, middle.pk, newest.pk]
    assert f'data-since="{iso(oldest.queued_at)}"' in html
    assert ">45 min</time>" in html
    assert 'data-count="queue">3</span>' in html


def test_supervisor_sees_all_states_in_all(
    supervisor: User, agent: User, receive: Receive, mine: Conversation, billing: Conversation
) -> None:
    done = receive("Resolvido", wa_id="5511933334444").conversation
    conversation_resolve(conversation=done, actor=supervisor)
    waiting = queued(receive, 1)

    html = page(as_user(supervisor), "?tab=all")

    assert set(row_ids(html)) == {mine.pk, done.pk, waiting.pk}
    assert 'data-tab="all" aria-current="page"' in html
    assert 'data-count="all">3</span>' in html


def test_admin_sees_every_team_in_all(
    admin: User, mine: Conversation, billing: Conversation
) -> None:
    html = page(as_user(admin), "?tab=all")

    assert set(row_ids(html)) == {mine.pk, billing.pk}
    assert f'<option value="{billing.team_id}">Financeiro</option>' in html


# --- other teams ------------------------------------------------------------------------


@pytest.mark.parametrize("tab", ["mine", "queue", "all"])
def test_other_teams_conversation_is_never_shown(
    agent: User, supervisor: User, billing: Conversation, conversation: Conversation, tab: str
) -> None:
    for user in (agent, supervisor):
        client = as_user(user)

        html = page(client, f"?tab={tab}")
        rows = client.get(f"/console/rows/?tab={tab}").content.decode()
        response = client.get(f"/console/row/{billing.pk}/?tab={tab}")

        assert billing.pk not in row_ids(html) + row_ids(rows)
        assert "João Lima" not in html + rows
        assert response.status_code == 204
        assert response.content == b""
    missing = as_user(agent).get(f"/console/row/{billing.pk + 1000}/?tab={tab}")
    assert missing.status_code == 204  # the same answer as for someone else's


def test_team_filter_offers_only_my_teams(agent: User, billing: Conversation) -> None:
    html = page(as_user(agent))

    assert ">Suporte técnico</option>" in html
    assert ">Financeiro</option>" not in html


# --- filters and search -------------------------------------------------------------------


def test_filters_by_state_team_and_tag(
    supervisor: User, agent: User, receive: Receive, mine: Conversation, finance: Team
) -> None:
    waiting = queued(receive, 1)
    tagged = queued(receive, 2)
    conversation_set_tags(conversation=tagged, names=["fibra"], actor=supervisor)
    supervisor.teams.add(finance)
    other = queued(receive, 3)
    conversation_transfer(conversation=other, actor=supervisor, team=finance)
    client = as_user(supervisor)

    assert row_ids(page(client, "?tab=all&state=open")) == [mine.pk]
    assert set(row_ids(page(client, "?tab=all&state=queued"))) == {waiting.pk, tagged.pk, other.pk}
    assert row_ids(page(client, f"?tab=all&team={finance.pk}")) == [other.pk]
    assert row_ids(page(client, "?tab=all&tag=fibra")) == [tagged.pk]
    assert row_ids(page(client, "?tab=queue&tag=fibra")) == [tagged.pk]
    # The same filters drive the fragments.
    rows = client.get("/console/rows/?tab=all&tag=fibra")
    assert row_ids(rows.content.decode()) == [tagged.pk]
    assert counts(rows) == {"mine": 0, "queue": 1, "all": 1}
    assert client.get(f"/console/row/{waiting.pk}/?tab=all&tag=fibra").status_code == 204
    assert client.get(f"/console/row/{tagged.pk}/?tab=all&tag=fibra").status_code == 200


def test_filters_stay_in_the_tab_links(agent: User, support: Team) -> None:
    html = page(as_user(agent), f"?tab=queue&team={support.pk}&q=maria")

    assert f'href="?tab=mine&amp;team={support.pk}&amp;q=maria"' in html
    assert f'<option value="{support.pk}" selected>' in html
    assert 'name="q" value="maria"' in html


def test_bad_filter_values_are_ignored(agent: User, mine: Conversation) -> None:
    html = page(as_user(agent), "?tab=nope&state=nope&team=abc&page=-3")

    assert row_ids(html) == [mine.pk]


def test_search_by_name_phone_protocol_and_message(
    agent: User, receive: Receive, conversation: Conversation
) -> None:
    other = queued(receive, 1, profile_name="Joaquim Prado", text="O roteador pisca vermelho")
    client = as_user(agent)

    assert row_ids(page(client, "?tab=queue&q=joaquim")) == [other.pk]
    assert row_ids(page(client, "?tab=queue&q=roteador")) == [other.pk]
    assert row_ids(page(client, f"?tab=queue&q={conversation.protocol}")) == [conversation.pk]
    assert row_ids(page(client, "?tab=queue&q=98888-7777")) == [conversation.pk]
    assert client.get(f"/console/row/{other.pk}/?tab=queue&q=maria").status_code == 204


# --- the row fragment ---------------------------------------------------------------------


def test_row_fragment_is_one_row_with_its_data(agent: User, mine: Conversation) -> None:
    Conversation.objects.filter(pk=mine.pk).update(priority=Conversation.Priority.URGENT)
    response = as_user(agent).get(f"/console/row/{mine.pk}/?tab=mine")
    html = response.content.decode().strip()
    mine.refresh_from_db()

    assert response.status_code == 200
    assert html.startswith(f'<li id="row-{mine.pk}" class="inbox-row is-unread is-waiting"')
    assert html.endswith("</li>")
    assert html.count("<li") == 1
    assert 'data-state="open" data-unread="1" data-priority="3"' in html
    assert f'data-sort="{int(mine.last_message_at.timestamp() * 1_000_000)}"' in html
    assert f'<a class="row-link" href="/console/c/{mine.pk}/">' in html
    assert '<span class="contact">Rita</span>' in html
    assert f'<span class="protocol">{mine.protocol}</span>' in html
    assert "Sem sinal desde ontem" in html
    assert '<span class="pill state-open">Open</span>' in html
    assert '<span class="meta assignee">Bruno</span>' in html
    assert '<span class="meta team">Suporte técnico</span>' in html
    assert 'title="Urgent"' in html
    assert f'data-since="{iso(mine.last_inbound_at)}"' in html
    assert counts(response) == {"mine": 1, "queue": 0}
    assert "style=" not in html


def test_a_row_says_when_only_a_template_reaches_the_customer(
    agent: User, mine: Conversation
) -> None:
    client = as_user(agent)
    assert (
        "24 h window closed" not in client.get(f"/console/row/{mine.pk}/?tab=mine").content.decode()
    )

    Conversation.objects.filter(pk=mine.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    html = client.get(f"/console/row/{mine.pk}/?tab=mine").content.decode()

    assert '<span class="window-closed" title="More than 24 hours since the customer wrote' in html
    assert ">24 h window closed</span>" in html


def test_row_is_gone_once_assigned_away_from_me(
    agent: User, teammate: User, supervisor: User, mine: Conversation
) -> None:
    client = as_user(agent)
    assert client.get(f"/console/row/{mine.pk}/?tab=mine").status_code == 200

    conversation_assign(conversation=mine, agent=teammate, actor=supervisor)

    response = client.get(f"/console/row/{mine.pk}/?tab=mine")
    assert response.status_code == 204
    assert counts(response) == {"mine": 0, "queue": 0}


def test_queue_row_is_gone_once_taken(
    agent: User, teammate: User, conversation: Conversation
) -> None:
    client = as_user(agent)
    assert client.get(f"/console/row/{conversation.pk}/?tab=queue").status_code == 200

    conversation_assign(conversation=conversation, agent=teammate, actor=teammate)

    assert client.get(f"/console/row/{conversation.pk}/?tab=queue").status_code == 204


def test_preview_says_who_wrote_last_and_what_kind(
    agent: User, teammate: User, receive: Receive, mine: Conversation
) -> None:
    client = as_user(agent)

    message_send(conversation=mine, text="Já verifico", actor=agent)
    html = client.get(f"/console/row/{mine.pk}/?tab=mine").content.decode()
    assert '<span class="sender">You: </span>Já verifico' in html
    assert "is-waiting" not in html

    message_send(conversation=mine, text="Pode *reiniciar*?", actor=None, sender_type="bot")
    html = client.get(f"/console/row/{mine.pk}/?tab=mine").content.decode()
    assert '<span class="sender">Bot: </span>Pode reiniciar?' in html  # no WhatsApp markers

    other = receive("oi", wa_id="5511977778888").conversation
    conversation_assign(conversation=other, agent=teammate, actor=teammate)
    message_send(conversation=other, text="Bom dia", actor=teammate)
    html = as_user(teammate).get(f"/console/row/{other.pk}/?tab=mine").content.decode()
    assert '<span class="sender">You: </span>Bom dia' in html
    html = as_user(agent).get(f"/console/row/{other.pk}/?tab=all").content.decode()
    assert html == ""  # agents have no "all" tab: their own list, where it is not

    receive("", wa_id="5511911112222", kind=Message.Kind.IMAGE, media_id="m1")
    html = client.get(f"/console/row/{mine.pk}/?tab=mine").content.decode()
    assert '<span class="row-preview"><span class="kind">📷 Image</span></span>' in html


def test_colleague_message_is_prefixed_with_their_name(
    supervisor: User, teammate: User, receive: Receive
) -> None:
    other = receive("oi", wa_id="5511977778888").conversation
    conversation_assign(conversation=other, agent=teammate, actor=teammate)
    message_send(conversation=other, text="Bom dia", actor=teammate)

    html = as_user(supervisor).get(f"/console/row/{other.pk}/?tab=all").content.decode()

    assert '<span class="sender">Carla: </span>Bom dia' in html


def test_tags_sla_and_unassigned(supervisor: User, agent: User, conversation: Conversation) -> None:
    Tag.objects.create(name="fibra", color="#0ea5e9")
    Tag.objects.create(name="estranha", color='red"/>')
    conversation_set_tags(conversation=conversation, names=["fibra", "estranha"], actor=supervisor)
    Conversation.objects.filter(pk=conversation.pk).update(
        first_response_due_at=timezone.now() - timedelta(minutes=5)
    )

    html = as_user(agent).get(f"/console/row/{conversation.pk}/?tab=queue").content.decode()

    assert 'fill="#0ea5e9"/></svg>fibra</span>' in html
    assert 'fill="#64748b"/></svg>estranha</span>' in html  # not a colour: the default one
    assert "is-overdue" in html
    assert re.search(
        r'<span class="sla-overdue" data-due="[^"]+" title="First response overdue">', html
    )
    assert '<span class="meta assignee unassigned">Unassigned</span>' in html
    assert "style=" not in html


def test_sla_marker_waits_until_due(agent: User, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        first_response_due_at=timezone.now() + timedelta(minutes=5)
    )

    html = as_user(agent).get(f"/console/row/{conversation.pk}/?tab=queue").content.decode()

    assert "is-overdue" not in html
    assert re.search(r'<span class="sla-overdue" data-due="[^"]+" [^>]* hidden>', html)


# --- take next ------------------------------------------------------------------------------


def test_take_next_button(agent: User) -> None:
    html = page(as_user(agent))

    assert (
        '<button type="button" id="take-next" class="inline" '
        'data-url="/api/v1/conversations/take-next/"'
    ) in html
    assert "Take next" in html


def test_take_next_is_disabled_with_a_reason_without_teams(db: None) -> None:
    loner = User.objects.create_user(username="sem.time", password="x", role=User.Role.AGENT)

    html = page(as_user(loner), "?tab=queue")

    assert 'id="take-next" class="inline" disabled aria-describedby="take-next-why"' in html
    assert "You are not in any team yet, so no queue is yours." in html


# --- escaping --------------------------------------------------------------------------------


def test_customer_text_is_escaped_everywhere(
    agent: User, supervisor: User, receive: Receive
) -> None:
    hostile = receive(XSS_TEXT, wa_id="5511966665555", profile_name=XSS_NAME).conversation
    client = as_user(agent)

    for html in (
        page(client, "?tab=queue"),
        client.get("/console/rows/?tab=queue").content.decode(),
        client.get(f"/console/row/{hostile.pk}/?tab=queue").content.decode(),
        page(client, f"?tab=queue&q={XSS_TEXT}"),
    ):
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert XSS_NAME not in html
        assert XSS_TEXT not in html


# --- empty states, load more ----------------------------------------------------------------


def test_empty_states(agent: User) -> None:
    client = as_user(agent)

    mine_html = page(client, "?tab=mine")
    assert "No conversations assigned to you. Take the next one from the queue." in mine_html
    assert '<div id="inbox-empty" class="empty inbox-empty">' in mine_html
    assert 'class="inbox-rows" aria-labelledby="inbox-heading" hidden>' in mine_html
    assert "No one is waiting in your teams' queues." in page(client, "?tab=queue")
    filtered = page(client, "?tab=queue&q=ninguem")
    assert "No conversations match these filters." in filtered
    assert 'href="?tab=queue">Clear filters</a>' in filtered


def test_empty_state_is_hidden_when_there_are_rows(agent: User, mine: Conversation) -> None:
    html = page(as_user(agent))

    assert '<div id="inbox-empty" class="empty inbox-empty" hidden>' in html


def test_load_more(agent: User, inbox: Inbox, support: Team) -> None:
    make_conversations(120, inbox=inbox, team=support, assignee=agent)  # 60 queued
    client = as_user(agent)

    html = page(client, "?tab=queue")
    first = row_ids(html)
    assert len(first) == 50
    assert '<form id="load-more" class="load-more" method="get" action="/console/">' in html
    assert '<input type="hidden" name="page" value="2">' in html

    response = client.get("/console/rows/?tab=queue")
    assert row_ids(response.content.decode()) == first
    assert response["X-Inbox-Next-Page"] == "2"

    more = client.get("/console/rows/?tab=queue&page=2")
    rest = row_ids(more.content.decode())
    assert len(rest) == 10
    assert not set(rest) & set(first)
    assert "X-Inbox-Next-Page" not in more
    assert counts(more) == {"mine": 60, "queue": 60}
    queued_at = dict(Conversation.objects.values_list("pk", "queued_at"))
    everything = [queued_at[pk] for pk in first + rest]
    assert everything == sorted(everything)

    # Without JavaScript the same button opens the next page.
    assert row_ids(page(client, "?tab=queue&page=2")) == rest


# --- query counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 60])
@pytest.mark.parametrize("tab", ["mine", "queue", "all"])
@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_constant_number_of_queries(
    django_assert_max_num_queries: Callable[..., object],
    request: pytest.FixtureRequest,
    inbox: Inbox,
    support: Team,
    size: int,
    tab: str,
    role: str,
) -> None:
    user: User = request.getfixturevalue(role)
    user.teams.add(support)
    make_conversations(size * 2, inbox=inbox, team=support, assignee=user)
    client = as_user(user)

    # Session and user, the page of rows, their tags, the counts, the team
    # and tag filters (and for admins, whether they are in a team at all).
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        html = page(client, f"?tab={tab}&tag=vip")
    shown = row_ids(html)
    assert len(shown) == min(size * (2 if tab == "all" else 1), 50)
    # Session and user, rows, tags, counts.
    with django_assert_max_num_queries(5):  # type: ignore[operator]
        rows = client.get(f"/console/rows/?tab={tab}&q=Q-")
    assert row_ids(rows.content.decode()) == shown
    with django_assert_max_num_queries(5):  # type: ignore[operator]
        one = client.get(f"/console/row/{shown[-1]}/?tab={tab}")
    assert row_ids(one.content.decode()) == [shown[-1]]


def test_an_admin_without_a_team_gets_the_no_team_queue(
    agent: User, receive: Receive, db: None
) -> None:
    admin = User.objects.create_user(username="root.admin", role=User.Role.ADMIN)
    orphan = queued(receive, 1, minutes_ago=5, inbox=Inbox.objects.create(name="Sem equipe"))
    Conversation.objects.filter(pk=orphan.pk).update(team=None)

    admin_page = page(as_user(admin), "?tab=queue")
    agent_page = page(as_user(agent), "?tab=queue")

    assert row_ids(admin_page) == [orphan.pk]
    assert 'id="take-next"' in admin_page and "disabled" not in _take_next(admin_page)
    assert orphan.pk not in row_ids(agent_page)


def _take_next(html: str) -> str:
    start = html.index('id="take-next"')
    return html[html.rindex("<", 0, start) : html.index(">", start)]
