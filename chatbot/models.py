"""What admins edit about the bot: its texts, menu, hours, holidays and the
knowledge base it may answer from. One ``BotSettings`` row (pk 1) holds the
texts; the menu is its own table so options can be reordered and routed."""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from conversations.models import default_business_hours
from conversations.sla import parse_schedule


class Intent(models.TextChoices):
    """What a customer may want; each menu option leads to one."""

    INVOICE = "invoice", _("Invoice copy (boleto / PIX)")
    TRUST_UNLOCK = "trust_unlock", _("Trust unlock")
    NO_INTERNET = "no_internet", _("No internet")
    SLOW_INTERNET = "slow_internet", _("Slow internet")
    TECHNICAL_VISIT = "technical_visit", _("Technical visit")
    PLANS = "plans", _("Plans / change plan")
    CANCELLATION = "cancellation", _("Cancellation")
    AGENT = "agent", _("Talk to an agent")


# Placeholders the texts may use; the admin form refuses any other.
TEXT_PLACEHOLDERS = ("{name}", "{protocol}", "{position}", "{wait}", "{company}")


def _check_placeholders(value: str) -> None:
    # The bot fills these texts with str.format_map: a stray brace would make
    # it fail on every message, so refuse what format cannot read.
    try:
        fields = list(string.Formatter().parse(value or ""))
    except ValueError as exc:
        raise ValidationError(
            _(
                "A brace is not closed (%(error)s). Write placeholders as {name}, "
                "and a literal brace twice: {{ or }}."
            ),
            params={"error": exc},
            code="unbalanced_braces",
        ) from None
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        found = "{" + field + (f"!{conversion}" if conversion else "")
        found += (f":{spec}" if spec else "") + "}"
        if found not in TEXT_PLACEHOLDERS:
            raise ValidationError(
                _("Unknown placeholder %(found)s; use %(allowed)s."),
                params={"found": found, "allowed": ", ".join(TEXT_PLACEHOLDERS)},
                code="unknown_placeholder",
            )


def _check_hours(value: dict) -> None:  # type: ignore[type-arg]
    try:
        parse_schedule(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValidationError(
            _('Business hours must look like {"0": [["08:00", "18:00"]]} (%(error)s).'),
            params={"error": exc},
        ) from exc


class BotSettings(models.Model):
    """The bot's texts and switches (a single row, pk 1)."""

    enabled = models.BooleanField(
        _("bot enabled"),
        default=True,
        help_text=_("Off: every new conversation goes straight to the queue after the greeting."),
    )
    company_name = models.CharField(_("company name"), max_length=80, default="Internet Fibra")
    greeting = models.TextField(
        _("greeting"),
        default=(
            "Olá{name}! 👋 Você está falando com o assistente virtual da *{company}*.\n"
            "Seu protocolo de atendimento é *{protocol}*."
        ),
        validators=[_check_placeholders],
        help_text=_("Sent on the first message. Placeholders: {name}, {protocol}, {company}."),
    )
    menu_prompt = models.CharField(
        _("menu prompt"),
        max_length=200,
        default="Como posso ajudar? Responda com o número da opção:",
    )
    not_understood = models.TextField(
        _("not understood"),
        default="Desculpe, não entendi. 🤔",
        help_text=_("Said before the menu when a message matches nothing."),
    )
    handoff_message = models.TextField(
        _("handoff message"),
        default=(
            "Vou transferir você para um atendente. Você é o *{position}º* da fila; "
            "tempo estimado de espera: *{wait}*."
        ),
        validators=[_check_placeholders],
        help_text=_("Placeholders: {position}, {wait}."),
    )
    out_of_hours_message = models.TextField(
        _("out-of-hours message"),
        default=(
            "Nosso atendimento humano funciona de segunda a sexta, das 8h às 18h, e aos "
            "sábados, das 8h às 12h. Sua solicitação ficou registrada (protocolo "
            "*{protocol}*) e será atendida assim que abrirmos."
        ),
        validators=[_check_placeholders],
    )
    goodbye = models.TextField(
        _("goodbye"),
        default="Obrigado pelo contato! Se precisar, é só chamar. 😊",
    )
    business_hours = models.JSONField(
        _("business hours (people)"),
        default=default_business_hours,
        validators=[_check_hours],
        help_text=_(
            'When agents answer. Per weekday (0 = Monday) a list of ["HH:MM", "HH:MM"] '
            "intervals; a missing weekday is closed."
        ),
    )
    fallback_team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("fallback team"),
        help_text=_("Receives handoffs whose menu option names no team."),
    )
    use_gemini = models.BooleanField(
        _("use Gemini"),
        default=True,
        help_text=_("Only when GEMINI_API_KEY is set; otherwise the rules alone answer."),
    )
    csat_enabled = models.BooleanField(_("ask for a rating after resolve"), default=True)
    csat_question = models.CharField(
        _("rating question"),
        max_length=300,
        default="Como você avalia este atendimento? Escolha de 1 (ruim) a 5 (ótimo).",
    )
    csat_thanks = models.CharField(
        _("rating thanks"), max_length=300, default="Obrigado pela sua avaliação! 💙"
    )
    csat_template = models.CharField(
        _("rating template"),
        max_length=120,
        blank=True,
        help_text=_(
            "Approved template to ask for the rating when the 24-hour window has closed; "
            "empty: no rating is asked then."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bot settings")
        verbose_name_plural = _("bot settings")

    def __str__(self) -> str:
        return str(_("Bot settings"))

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = 1
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class MenuOption(models.Model):
    position = models.PositiveSmallIntegerField(_("number"), unique=True)
    label = models.CharField(
        _("label"), max_length=24, help_text=_("WhatsApp shows 24 characters.")
    )
    description = models.CharField(_("description"), max_length=72, blank=True)
    intent = models.CharField(_("intent"), max_length=24, choices=Intent.choices)
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("team"),
        help_text=_("Who receives the customer when this option ends with an agent."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position"]
        verbose_name = _("menu option")
        verbose_name_plural = _("menu options")

    def __str__(self) -> str:
        return f"{self.position}. {self.label}"


class Holiday(models.Model):
    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=80)

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self) -> str:
        return f"{self.date:%d/%m/%Y} {self.name}"


class KnowledgeArticle(models.Model):
    """An answer the bot may give word for word (Gemini picks which one; it
    never writes its own)."""

    question = models.CharField(_("question"), max_length=200)
    answer = models.TextField(_("answer"))
    keywords = models.CharField(
        _("keywords"), max_length=300, blank=True, help_text=_("Comma-separated, optional.")
    )
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["question"]
        verbose_name = _("knowledge base article")
        verbose_name_plural = _("knowledge base")

    def __str__(self) -> str:
        return self.question


# The menu an ISP starts with (made by the data migration); admins change it.
DEFAULT_MENU: list[tuple[int, str, str, str]] = [
    (1, "2ª via do boleto / PIX", "Boleto, linha digitável e PIX", Intent.INVOICE),
    (2, "Desbloqueio de confiança", "Libera sua internet por alguns dias", Intent.TRUST_UNLOCK),
    (3, "Sem internet", "Verificar falhas e testar conexão", Intent.NO_INTERNET),
    (4, "Internet lenta", "Dicas e suporte técnico", Intent.SLOW_INTERNET),
    (5, "Visita técnica", "Agendar um técnico", Intent.TECHNICAL_VISIT),
    (6, "Planos / mudar de plano", "Conhecer ou trocar de plano", Intent.PLANS),
    (7, "Cancelamento", "Cancelar o serviço", Intent.CANCELLATION),
    (8, "Falar com atendente", "Atendimento humano", Intent.AGENT),
]
