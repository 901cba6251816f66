"""The bot: reads one inbound message of a conversation in state ``bot`` and
answers it, hands the customer to a team, or resolves the conversation.

Its memory between messages is ``Conversation.bot_state``::

    {"step": "menu", "intent": "invoice", "subscriber": "C-1001",
     "attempts": 0, "misses": 0, "last_id": 123, "tried": ["no_internet_steps"]}

``handle`` runs under the conversation's row lock, so two messages of one
customer are never answered at once, and it does nothing once the
conversation has left ``bot`` (an agent took it while the task waited).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Team
from chatbot import gemini, matching, metrics, texts
from chatbot.config import BotConfig, bot_config
from chatbot.models import Intent
from conversations.models import Conversation, Message
from conversations.selectors import queue_place
from conversations.services import (
    contact_link_customer,
    conversation_handoff,
    conversation_resolve,
    message_send,
    note_create,
)
from conversations.sla import parse_schedule
from ispsupport.identity import canonical_phone, clean_document
from subscribers.directory import (
    ContractInfo,
    DirectoryError,
    SubscriberDirectory,
    SubscriberInfo,
    get_directory,
)

logger = structlog.get_logger(__name__)

# Intents that need to know who the customer is before anything is said.
NEEDS_IDENTITY = {Intent.INVOICE, Intent.TRUST_UNLOCK, Intent.NO_INTERNET, Intent.SLOW_INTERNET}
# Intents that always end with a person.
HANDOFF_INTENTS = {Intent.TECHNICAL_VISIT, Intent.PLANS, Intent.CANCELLATION, Intent.AGENT}
MAX_DOCUMENT_ATTEMPTS = 3
MAX_MISSES = 2
MEDIA_KINDS = {
    Message.Kind.IMAGE,
    Message.Kind.AUDIO,
    Message.Kind.VIDEO,
    Message.Kind.DOCUMENT,
    Message.Kind.STICKER,
}
# Kinds the bot lets pass without a word (a reaction is not a question).
SILENT_KINDS = {Message.Kind.REACTION, Message.Kind.UNSUPPORTED}


@dataclass
class Outgoing:
    text: str
    kind: str = Message.Kind.TEXT
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What one run decided; carried out after the decision, in order."""

    messages: list[Outgoing] = field(default_factory=list)
    handoff_reason: str = ""
    handoff_team_id: int | None = None
    note: str = ""
    resolve: bool = False
    label: str = "unknown"  # bot_messages_total{intent}

    def say(self, text: str) -> None:
        self.messages.append(Outgoing(text))

    def buttons(self, text: str, buttons: list[tuple[str, str]]) -> None:
        self.messages.append(
            Outgoing(
                text,
                Message.Kind.INTERACTIVE,
                {"body": text, "buttons": [{"id": i, "title": t} for i, t in buttons]},
            )
        )


def handle(message_id: int) -> str:
    """Answer inbound message ``message_id``; returns what happened (for logs and tests)."""
    with transaction.atomic():
        message = (
            Message.objects.select_related("conversation__contact", "conversation__inbox")
            .filter(pk=message_id, direction=Message.Direction.IN)
            .first()
        )
        if message is None:
            return "missing"
        conversation = (
            Conversation.objects.select_for_update()
            .select_related("contact", "inbox")
            .get(pk=message.conversation_id)
        )
        if conversation.state != Conversation.State.BOT:
            return "not_bot"
        state: dict[str, Any] = dict(conversation.bot_state or {})
        if message.pk <= int(state.get("last_id") or 0):
            return "stale"  # a redelivered task, or an older message run late
        bot = Bot(conversation, message, state, bot_config())
        plan = bot.decide()
        state["last_id"] = message.pk
        Conversation.objects.filter(pk=conversation.pk).update(bot_state=state)
        _carry_out(conversation, plan, bot.config)
    metrics.BOT_MESSAGES.labels(intent=plan.label).inc()
    if plan.handoff_reason:
        metrics.BOT_HANDOFFS.labels(reason=plan.handoff_reason).inc()
        return f"handoff:{plan.handoff_reason}"
    return "resolved" if plan.resolve else "answered"


def _carry_out(conversation: Conversation, plan: Plan, config: BotConfig) -> None:
    for out in plan.messages:
        message_send(conversation=conversation, text=out.text, kind=out.kind, payload=out.payload)
    if plan.handoff_reason:
        team = (
            Team.objects.filter(pk=plan.handoff_team_id).first() if plan.handoff_team_id else None
        )
        conversation = conversation_handoff(
            conversation=conversation, team=team, reason=plan.handoff_reason
        )
        if plan.note:
            note_create(conversation=conversation, author=None, text=plan.note)
        settings = config.settings
        if within_business_hours(config):
            place = queue_place(conversation)
            text = settings.handoff_message.format_map(
                _Placeholders(position=place.position, wait=texts.wait(place.wait_minutes))
            )
        else:
            text = settings.out_of_hours_message.format_map(
                _Placeholders(protocol=conversation.protocol)
            )
        message_send(conversation=conversation, text=text)
    elif plan.resolve:
        conversation_resolve(conversation=conversation, actor=None)


class _Placeholders(dict):  # type: ignore[type-arg]
    """format_map that leaves an unknown {placeholder} as it is instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def within_business_hours(config: BotConfig, now: datetime | None = None) -> bool:
    """Whether people are working now, by the bot's hours and holidays."""
    local = timezone.localtime(now or timezone.now())
    if local.date() in config.holidays:
        return False
    try:
        schedule = parse_schedule(config.settings.business_hours)
    except (ValueError, TypeError):
        return True  # a broken schedule must not hide the queue from customers
    return any(
        opens <= local.time() < closes for opens, closes in schedule.get(local.weekday(), [])
    )


class Bot:
    def __init__(
        self,
        conversation: Conversation,
        message: Message,
        state: dict[str, Any],
        config: BotConfig,
        directory: SubscriberDirectory | None = None,
    ) -> None:
        self.conversation = conversation
        self.contact = conversation.contact
        self.message = message
        self.text = (message.text or "").strip()
        self.reply_id = str((message.payload or {}).get("reply_id") or "")
        self.state = state
        self.config = config
        self._directory = directory
        self._subscriber: SubscriberInfo | None = None
        self.plan = Plan()

    # --- entry ---------------------------------------------------------------------

    def decide(self) -> Plan:
        plan = self.plan
        if self.message.kind in SILENT_KINDS:
            plan.label = "ignored"
            return plan
        first = not self.state.get("step")
        if first:
            self._greet()
            if not self.config.settings.enabled:
                return self._handoff("bot_disabled", intent=Intent.AGENT)
        if self.message.kind in MEDIA_KINDS and not self.text:
            plan.label = "media"
            plan.say(texts.MEDIA_NOT_UNDERSTOOD)
            if first:
                self._menu()
            return plan
        try:
            self._dispatch(first)
        except DirectoryError as exc:
            logger.warning(
                "bot_directory_failed", conversation_id=self.conversation.pk, error=str(exc)
            )
            plan.messages = [m for m in plan.messages if m.text != texts.ASK_DOCUMENT]
            plan.say(texts.DIRECTORY_DOWN)
            self._handoff("directory_error", intent=self.state.get("intent") or Intent.AGENT)
        return plan

    def _dispatch(self, first: bool) -> None:
        step = self.state.get("step") or "menu"
        reply = self.reply_id
        # Taps that mean the same wherever the customer is.
        if reply == "menu" or (not reply and matching.is_menu_request(self.text)):
            self._menu()
            return
        if reply == "agent" and step != "offer_agent":
            self._start(Intent.AGENT)
            return
        if reply.startswith("intent:"):
            self._start(reply.split(":", 1)[1])
            return
        if reply.startswith("menu:") and reply[5:].isdigit():
            self._choose_option(int(reply[5:]))
            return
        found = matching.intent_of(self.text) if self.text else None
        if found and found.intent == Intent.AGENT and step != "offer_agent":
            self._start(Intent.AGENT)
            return

        handler = {
            "ask_document": self._on_document,
            "choose_invoice": self._on_invoice_choice,
            "troubleshoot": self._on_troubleshoot_answer,
            "anything_else": self._on_anything_else,
            "offer_agent": self._on_offer_agent,
        }.get(step)
        if handler is not None and handler(found):
            return
        self._free_text(found, first)

    # --- the menu and free text ------------------------------------------------------

    def _greet(self) -> None:
        settings = self.config.settings
        subscriber = self._identify_quietly()
        first_name = subscriber.first_name if subscriber else ""
        if not first_name:
            first_name = (self.contact.name or self.contact.profile_name or "").split(" ")[0]
        self.plan.say(
            settings.greeting.format_map(
                _Placeholders(
                    name=f", {first_name}" if first_name else "",
                    protocol=self.conversation.protocol,
                    company=settings.company_name,
                )
            )
        )

    def _menu(self, *, intro: str = "") -> None:
        self.state.update(step="menu", intent=None)
        self.plan.label = "menu"
        options = self.config.menu
        lines = [self.config.settings.menu_prompt]
        lines += [f"*{o.position}* - {o.label}" for o in options]
        body = "\n".join(([intro] if intro else []) + lines)
        if not options:
            self.plan.say(body)
            return
        self.plan.messages.append(
            Outgoing(
                body,
                Message.Kind.INTERACTIVE,
                {
                    "body": body,
                    "button": texts.MENU_BUTTON,
                    "sections": [
                        {
                            "title": texts.MENU_SECTION,
                            "rows": [
                                {
                                    "id": f"menu:{o.position}",
                                    "title": o.label[:24],
                                    "description": o.description[:72],
                                }
                                for o in options[:10]
                            ],
                        }
                    ],
                },
            )
        )

    def _choose_option(self, position: int) -> None:
        option = self.config.option(position)
        if option is None:
            self._miss()
            return
        self._start(option.intent)

    def _free_text(self, found: matching.Match | None, first: bool) -> None:
        step = self.state.get("step") or "menu"
        if found is not None:
            self._start(found.intent)
            return
        number = matching.number_answer(self.text)
        if number is not None and step in ("menu", "anything_else"):
            self._choose_option(number)
            return
        if matching.is_greeting_only(self.text):
            self._menu()
            return
        if step == "menu" and matching.is_thanks(self.text) and not first:
            self._goodbye()
            return
        article = self._article_by_keywords()
        if article is None and self._gemini_allowed():
            reading = gemini.read_message(
                self.text,
                intents=[(o.intent, o.label) for o in self.config.menu],
                articles=self.config.articles,
            )
            if reading is not None and reading.intent:
                self._start(reading.intent)
                return
            if reading is not None and reading.article_id:
                article = next(
                    (a for a in self.config.articles if a.id == reading.article_id), None
                )
        if article is not None:
            self.plan.label = "faq"
            self.plan.say(article.answer)
            self._ask_anything_else()
            return
        if first:
            self._menu()
            return
        self._miss()

    def _gemini_allowed(self) -> bool:
        return bool(self.text) and self.config.settings.use_gemini and gemini.is_configured()

    def _article_by_keywords(self) -> Any:
        words = matching.normalize(self.text).split()
        for article in self.config.articles:
            keywords = [matching.normalize(k) for k in article.keywords.split(",")]
            if any(k and matching._contains(words, k) for k in keywords):
                return article
        return None

    def _miss(self) -> None:
        misses = int(self.state.get("misses") or 0) + 1
        self.state["misses"] = misses
        if misses >= MAX_MISSES:
            self._handoff("not_understood", intent=Intent.AGENT)
            return
        self._menu(intro=self.config.settings.not_understood)
        self.plan.label = "unknown"

    # --- intents ---------------------------------------------------------------------

    def _start(self, intent: str) -> None:
        if intent not in Intent.values:
            self._miss()
            return
        self.state.update(intent=intent, misses=0)
        self.plan.label = intent
        if intent in HANDOFF_INTENTS:
            self._identify_quietly()
            reason = "requested" if intent == Intent.AGENT else "intent"
            self._handoff(reason, intent=intent)
            return
        subscriber = self._identify()
        if subscriber is None:
            return  # asked for the CPF/CNPJ; the intent waits in the state
        self._run(intent, subscriber)

    def _run(self, intent: str, subscriber: SubscriberInfo) -> None:
        if intent == Intent.INVOICE:
            self._invoices(subscriber)
        elif intent == Intent.TRUST_UNLOCK:
            self._trust_unlock(subscriber)
        elif intent in (Intent.NO_INTERNET, Intent.SLOW_INTERNET):
            self._connection(intent, subscriber)

    # --- identification ------------------------------------------------------------

    @property
    def directory(self) -> SubscriberDirectory:
        if self._directory is None:
            self._directory = get_directory()
        return self._directory

    def _identify_quietly(self) -> SubscriberInfo | None:
        """The subscriber this number belongs to, if that is certain; never asks."""
        if self._subscriber is not None:
            return self._subscriber
        code = self.state.get("subscriber") or self.contact.customer_code
        try:
            if code:
                self._subscriber = self.directory.get(code)
            if self._subscriber is None:
                phone = self.contact.phone or canonical_phone(self.contact.wa_id or "")
                found = self.directory.find_by_phone(phone) if phone else []
                # Two subscribers on one phone (a family): only the CPF tells which.
                if len(found) == 1:
                    self._subscriber = found[0]
        except DirectoryError:
            if self.state.get("step"):
                raise
            return None  # the greeting goes out without a name
        if self._subscriber is not None and self.state.get("subscriber") != self._subscriber.code:
            self.state["subscriber"] = self._subscriber.code
            if self.contact.customer_code != self._subscriber.code:
                contact_link_customer(contact=self.contact, customer_code=self._subscriber.code)
        return self._subscriber

    def _identify(self) -> SubscriberInfo | None:
        subscriber = self._identify_quietly()
        if subscriber is not None:
            return subscriber
        self.state.update(step="ask_document", attempts=0)
        self.plan.say(texts.ASK_DOCUMENT)
        return None

    def _on_document(self, found: matching.Match | None) -> bool:
        if found is not None and not matching.looks_like_document(matching.document_in(self.text)):
            return False  # they changed the subject: follow them
        self.plan.label = "identification"
        attempts = int(self.state.get("attempts") or 0) + 1
        self.state["attempts"] = attempts
        try:
            document = clean_document(matching.document_in(self.text))
        except ValidationError:
            return self._document_retry(attempts, texts.INVALID_DOCUMENT)
        subscriber = self.directory.find_by_document(document)
        if subscriber is None:
            return self._document_retry(attempts, texts.DOCUMENT_NOT_FOUND)
        self._subscriber = subscriber
        self.state.update(subscriber=subscriber.code, attempts=0)
        contact_link_customer(
            contact=self.contact, customer_code=subscriber.code, document=document
        )
        self.plan.say(texts.IDENTIFIED.format(name=subscriber.first_name or subscriber.name))
        intent = self.state.get("intent") or Intent.INVOICE
        self.plan.label = intent
        self._run(intent, subscriber)
        return True

    def _document_retry(self, attempts: int, text: str) -> bool:
        if attempts >= MAX_DOCUMENT_ATTEMPTS:
            self.plan.say(texts.IDENTIFICATION_FAILED)
            self._handoff("identification_failed", intent=self.state.get("intent") or "agent")
        else:
            self.plan.say(text)
        return True

    # --- invoices -------------------------------------------------------------------

    def _invoices(self, subscriber: SubscriberInfo) -> None:
        invoices = self.directory.open_invoices(subscriber.code)
        if not invoices:
            self.plan.say(texts.NO_OPEN_INVOICES)
            self._ask_anything_else()
            return
        if len(invoices) == 1:
            self._send_invoice(invoices[0])
            return
        self.state["step"] = "choose_invoice"
        self.state["invoices"] = [i.code for i in invoices[:10]]
        body = texts.CHOOSE_INVOICE.format(count=len(invoices))
        lines = [
            f"*{n}* - {texts.money(i.amount)}, vence {texts.day(i.due_date)}"
            + (texts.INVOICE_OVERDUE if i.overdue else "")
            for n, i in enumerate(invoices[:10], 1)
        ]
        text = "\n".join([body, *lines])
        self.plan.messages.append(
            Outgoing(
                text,
                Message.Kind.INTERACTIVE,
                {
                    "body": text,
                    "button": texts.INVOICE_LIST_BUTTON,
                    "sections": [
                        {
                            "rows": [
                                {
                                    "id": f"inv:{i.code}",
                                    "title": f"{texts.money(i.amount)}"[:24],
                                    "description": (
                                        f"Vence {texts.day(i.due_date)}"
                                        + (texts.INVOICE_OVERDUE if i.overdue else "")
                                    )[:72],
                                }
                                for i in invoices[:10]
                            ]
                        }
                    ],
                },
            )
        )

    def _on_invoice_choice(self, found: matching.Match | None) -> bool:
        codes: list[str] = list(self.state.get("invoices") or [])
        chosen = ""
        if self.reply_id.startswith("inv:"):
            chosen = self.reply_id[4:]
        elif (number := matching.number_answer(self.text)) is not None and 1 <= number <= len(
            codes
        ):
            chosen = codes[number - 1]
        if not chosen or chosen not in codes:
            return False
        subscriber = self._identify_quietly()
        if subscriber is None:
            return False
        invoice = next(
            (i for i in self.directory.open_invoices(subscriber.code) if i.code == chosen), None
        )
        self.plan.label = Intent.INVOICE
        if invoice is None:
            self.plan.say(texts.NO_OPEN_INVOICES)
            self._ask_anything_else()
        else:
            self._send_invoice(invoice)
        return True

    def _send_invoice(self, invoice: Any) -> None:
        self.plan.say(
            texts.INVOICE.format(
                code=invoice.code,
                amount=texts.money(invoice.amount),
                due=texts.day(invoice.due_date),
                overdue=texts.INVOICE_OVERDUE if invoice.overdue else "",
                line=invoice.digitable_line or texts.INVOICE_NO_LINE,
            )
        )
        if invoice.pix_code:
            self.plan.say(texts.PIX)
            # Alone in its message, so "copy" on the phone copies just the code.
            self.plan.say(invoice.pix_code)
        self.plan.say(texts.PAYMENT_NOTE)
        self._ask_anything_else()

    # --- trust unlock ----------------------------------------------------------------

    def _trust_unlock(self, subscriber: SubscriberInfo) -> None:
        contract = _unlock_candidate(subscriber.contracts)
        if contract is None:
            self.plan.say(texts.UNLOCK_NOT_SUSPENDED)
            self._offer_agent()
            return
        result = self.directory.request_trust_unlock(contract.code)
        if result.outcome == "unlocked" and result.until:
            self.plan.say(
                texts.UNLOCKED.format(
                    name=subscriber.first_name or subscriber.name, until=texts.moment(result.until)
                )
            )
            self._ask_anything_else(invoice_button=True)
            return
        if result.outcome == "already_unlocked" and result.until:
            self.plan.say(texts.ALREADY_UNLOCKED.format(until=texts.moment(result.until)))
            self._ask_anything_else(invoice_button=True)
            return
        if result.outcome == "used_recently" and result.next_allowed_at:
            self.plan.say(texts.UNLOCK_USED_RECENTLY.format(next=texts.day(result.next_allowed_at)))
        elif result.outcome == "not_for_non_payment":
            self.plan.say(texts.UNLOCK_NOT_FOR_PAYMENT)
        elif result.outcome == "cancelled":
            self.plan.say(texts.UNLOCK_CANCELLED)
        else:
            self.plan.say(texts.UNLOCK_NOT_SUSPENDED)
        self.state["refused"] = result.outcome
        self._offer_agent()

    def _offer_agent(self) -> None:
        self.state["step"] = "offer_agent"
        self.plan.buttons(
            texts.OFFER_AGENT,
            [
                ("agent", texts.BUTTON_AGENT),
                ("menu", texts.BUTTON_MENU),
                ("done", texts.BUTTON_DONE),
            ],
        )

    def _on_offer_agent(self, found: matching.Match | None) -> bool:
        if self.reply_id == "done" or (found is None and matching.is_no(self.text)):
            self._goodbye()
            return True
        # The button, a yes, or "quero falar com atendente": the person who
        # takes it should be the team of what was refused, not the general one.
        if (
            self.reply_id == "agent"
            or (found is not None and found.intent == Intent.AGENT)
            or (found is None and matching.is_yes(self.text))
        ):
            reason = "unlock_refused" if self.state.get("refused") else "requested"
            self._handoff(reason, intent=self.state.get("intent") or Intent.AGENT)
            return True
        return False

    # --- no / slow internet --------------------------------------------------------

    def _connection(self, intent: str, subscriber: SubscriberInfo) -> None:
        if any(c.suspended_for_non_payment for c in subscriber.contracts) and not any(
            c.trust_unlocked_until for c in subscriber.contracts
        ):
            self.state["step"] = "menu"
            self.plan.buttons(
                texts.SUSPENDED_FOR_PAYMENT,
                [
                    ("intent:trust_unlock", texts.BUTTON_UNLOCK),
                    ("intent:invoice", texts.BUTTON_INVOICE),
                    ("agent", texts.BUTTON_AGENT),
                ],
            )
            return
        outages = self.directory.open_outages(subscriber.region) if subscriber.region else []
        if outages:
            outage = outages[0]
            self.state["outage"] = outage.code
            self.plan.say(
                texts.OUTAGE.format(
                    region=outage.region,
                    title=outage.title,
                    description=f" {outage.description}" if outage.description else "",
                    forecast=texts.OUTAGE_FORECAST.format(at=texts.moment(outage.forecast_at))
                    if outage.forecast_at
                    else texts.OUTAGE_NO_FORECAST,
                )
            )
            self._ask_anything_else()
            return
        steps = (
            texts.NO_INTERNET_STEPS if intent == Intent.NO_INTERNET else texts.SLOW_INTERNET_STEPS
        )
        self.state["step"] = "troubleshoot"
        self.state["tried"] = steps
        self.plan.say(steps)
        self.plan.buttons(
            texts.DID_IT_WORK, [("yes", texts.BUTTON_YES_WORKED), ("no", texts.BUTTON_NO_WORKED)]
        )

    def _on_troubleshoot_answer(self, found: matching.Match | None) -> bool:
        self.plan.label = "troubleshooting"
        if not self.reply_id and found is None and matching.is_wait(self.text):
            self.plan.say(texts.TAKE_YOUR_TIME)  # still on the steps: the question stands
            return True
        if self.reply_id == "yes" or (found is None and matching.is_yes(self.text)):
            self.plan.say(texts.GLAD_IT_WORKS)
            self._ask_anything_else()
            return True
        if (
            self.reply_id == "no"
            or matching.is_no(self.text)
            or (found is not None and found.intent in (Intent.NO_INTERNET, Intent.SLOW_INTERNET))
        ):
            self._handoff(
                "troubleshooting_failed", intent=self.state.get("intent") or "no_internet"
            )
            return True
        return False

    # --- endings ---------------------------------------------------------------------

    def _ask_anything_else(self, *, invoice_button: bool = False) -> None:
        self.state["step"] = "anything_else"
        buttons = [("menu", texts.BUTTON_MENU), ("done", texts.BUTTON_DONE)]
        if invoice_button:
            buttons.insert(0, ("intent:invoice", texts.BUTTON_INVOICE))
        self.plan.buttons(texts.ANYTHING_ELSE, buttons)

    def _on_anything_else(self, found: matching.Match | None) -> bool:
        if found is not None:
            return False
        if self.reply_id == "done" or matching.is_no(self.text) or matching.is_thanks(self.text):
            self._goodbye()
            return True
        if matching.is_yes(self.text):
            self._menu()
            return True
        return False

    def _goodbye(self) -> None:
        self.plan.label = "goodbye"
        self.plan.say(self.config.settings.goodbye)
        self.state["step"] = "done"
        self.plan.resolve = True

    def _handoff(self, reason: str, *, intent: str) -> Plan:
        plan = self.plan
        plan.handoff_reason = reason
        option = self.config.option_for(intent)
        if reason == "troubleshooting_failed":
            option = self.config.option_for(intent) or self.config.option_for(Intent.NO_INTERNET)
        plan.handoff_team_id = (option.team_id if option else None) or (
            self.config.settings.fallback_team_id
        )
        plan.note = self._summary(reason, intent)
        self.state["step"] = "handed_off"
        if plan.label in ("unknown", "menu"):
            plan.label = intent if intent in Intent.values else "unknown"
        return plan

    def _summary(self, reason: str, intent: str) -> str:
        lines = [texts.NOTE_HEADER]
        lines.append(f"Assunto: {texts.INTENT_NAMES.get(intent, intent)}")
        lines.append(f"Motivo da transferência: {texts.REASON_NAMES.get(reason, reason)}")
        # Later messages of a conversation have not looked the customer up yet
        # (a tapped "agent", a "não" to the troubleshooting); staff need to know who it is.
        subscriber = self._subscriber
        if subscriber is None and reason != "directory_error":
            subscriber = self._identify_quietly()
        if subscriber is not None:
            lines.append(f"Cliente identificado: {subscriber.name} (código {subscriber.code})")
            for contract in subscriber.contracts:
                status = {"active": "ativo", "suspended": "suspenso", "cancelled": "cancelado"}.get(
                    contract.status, contract.status
                )
                extra = " por falta de pagamento" if contract.suspended_for_non_payment else ""
                lines.append(f"Contrato {contract.code}: {contract.plan.name}, {status}{extra}")
            if subscriber.region:
                lines.append(f"Região: {subscriber.region}")
        else:
            lines.append("Cliente não identificado pelo bot.")
        if self.state.get("outage"):
            lines.append(f"Falha conhecida na região: {self.state['outage']}")
        if reason == "troubleshooting_failed" and self.state.get("tried"):
            lines.append("Passos já tentados pelo cliente com o bot:")
            lines.append(str(self.state["tried"]))
            lines.append("Resultado: não resolveu.")
        if self.state.get("refused"):
            lines.append(f"Desbloqueio de confiança recusado: {self.state['refused']}")
        if self.text:
            lines.append(f'Última mensagem do cliente: "{self.text[:300]}"')
        return "\n".join(lines)


def _unlock_candidate(contracts: tuple[ContractInfo, ...]) -> ContractInfo | None:
    """The contract a trust unlock is about: one suspended for non-payment if
    any, else any suspended or cancelled one (to explain why not)."""
    for wanted in (
        lambda c: c.suspended_for_non_payment,
        lambda c: c.status == "suspended",
        lambda c: c.trust_unlocked_until is not None,
        lambda c: c.status == "cancelled",
    ):
        found = next((c for c in contracts if wanted(c)), None)
        if found is not None:
            return found
    return None
