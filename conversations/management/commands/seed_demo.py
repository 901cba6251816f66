"""Fill the database with a believable ISP helpdesk: teams and their queues, a
WhatsApp inbox, agents, tags, canned replies, customers and conversations in
every state with their messages.

Run it again and it only adds what is missing; conversations are created once
(``--reset`` deletes the demo contacts, conversations and messages first).
Demo contacts are the ones whose customer code starts with ``DEMO-``.

Conversations and messages are bulk-inserted, so 100,000 conversations take
seconds, not hours. They bypass the services on purpose: the rows are built
consistent by hand (protocol, last message, unread count, SLA due times).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Team, User
from accounts.services import generate_password, user_create
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
from conversations.sla import Schedule, add_business_minutes, parse_schedule
from ispsupport.crypto import encrypt
from ispsupport.identity import document_hash

DEMO_PREFIX = "DEMO-"
SUPPORT, BILLING, SALES = "Suporte técnico", "Financeiro", "Comercial"

TEAMS = {
    SUPPORT: ("Internet lenta, sem conexão, roteador e instalação", 15, 4 * 60, 6),
    BILLING: ("Boletos, segunda via, pagamentos e desbloqueio", 30, 8 * 60, 8),
    SALES: ("Planos, mudança de endereço e cancelamento", 30, 24 * 60, 5),
}

# username, name, role, teams
STAFF = [
    ("joana.ribeiro", "Joana Ribeiro", User.Role.AGENT, [SUPPORT]),
    ("marcos.oliveira", "Marcos Oliveira", User.Role.AGENT, [SUPPORT]),
    ("patricia.lima", "Patrícia Lima", User.Role.AGENT, [SUPPORT]),
    ("renato.alves", "Renato Alves", User.Role.AGENT, [BILLING]),
    ("camila.santos", "Camila Santos", User.Role.AGENT, [BILLING, SALES]),
    ("thiago.pereira", "Thiago Pereira", User.Role.AGENT, [SALES]),
    ("luciana.costa", "Luciana Costa", User.Role.SUPERVISOR, [SUPPORT, BILLING, SALES]),
]

TAGS = [
    ("lentidão", "#f59e0b"),
    ("sem-conexão", "#ef4444"),
    ("boleto", "#0ea5e9"),
    ("mudança-de-plano", "#8b5cf6"),
    ("cancelamento", "#64748b"),
]

# shortcut, title, team (None: every team), text
CANNED = [
    (
        "saudacao",
        "Saudação",
        None,
        "Olá, {{contact.first_name}}! Aqui é {{agent.name}}, do atendimento. Como posso ajudar?",
    ),
    (
        "boleto",
        "Segunda via do boleto",
        BILLING,
        "{{contact.first_name}}, a segunda via do seu boleto está na Central do Assinante "
        "(app ou site) em Financeiro > Boletos. Se preferir, envio o código de barras por aqui.",
    ),
    (
        "reinicie",
        "Reiniciar o roteador",
        SUPPORT,
        "{{contact.first_name}}, vamos tentar o básico primeiro: desligue o roteador da tomada, "
        "aguarde 30 segundos e ligue de novo. As luzes levam uns 2 minutos para estabilizar.",
    ),
    (
        "encerramento",
        "Encerramento",
        None,
        "Obrigado pelo contato, {{contact.first_name}}! Seu protocolo é "
        "{{conversation.protocol}}. Qualquer coisa, é só chamar por aqui.",
    ),
]

FIRST_NAMES = (  # noqa: SIM905 - a list of names reads best as a sentence
    "Maria Ana Francisca Antônia Adriana Juliana Márcia Fernanda Patrícia Aline Sandra "
    "Camila Amanda Bruna Jéssica Letícia Júlia Luciana Vanessa Mariana Gabriela Beatriz "
    "José João Antônio Francisco Carlos Paulo Pedro Lucas Luiz Marcos Luís Gabriel Rafael "
    "Daniel Marcelo Bruno Eduardo Felipe Raimundo Rodrigo Thiago Matheus Gustavo Leonardo"
).split()
SURNAMES = (  # noqa: SIM905 - a list of names reads best as a sentence
    "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa "
    "Ribeiro Martins Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias "
    "Nascimento Andrade Moreira Nunes Marques Machado Mendes Freitas Cardoso Ramos "
    "Gonçalves Santana Teixeira Araújo Cavalcanti Monteiro Moura Batista"
).split()
AREA_CODES = (11, 11, 11, 21, 21, 31, 41, 51, 61, 71, 81, 85, 27, 48, 62, 19, 12, 13, 47, 92)

BOT_MENU = (
    "Olá! Sou o assistente virtual da Conecta Fibra. Escolha uma opção:\n"
    "1 - Suporte técnico\n2 - Financeiro (boletos)\n3 - Planos e cancelamento\n"
    "4 - Falar com um atendente"
)


@dataclass(frozen=True)
class Topic:
    tag: str
    team: str
    option: str
    openers: tuple[str, ...]
    bot_ask: str
    # After the opener: agent, customer, agent, customer, agent, customer, agent.
    dialog: tuple[str, ...]


TOPICS = (
    Topic(
        "lentidão",
        SUPPORT,
        "1",
        (
            "Minha internet está lenta desde ontem",
            "Boa tarde, a internet tá muito lenta, não consigo nem assistir vídeo",
            "A velocidade não chega nem na metade do plano de 300 mega",
            "Oi, internet lenta de novo aqui em casa 😕",
        ),
        "Entendi. Você está conectado pelo Wi-Fi ou pelo cabo?",
        (
            "Olá, {first}! Aqui é {agent}, do suporte. Você está usando o Wi-Fi ou o cabo?",
            "Wi-Fi, no celular e na TV",
            "Pode fazer um teste no speedtest.net perto do roteador e me mandar o resultado?",
            "Deu 42 mega de download",
            "Identifiquei muitos dispositivos no canal 2.4 GHz. Troquei o canal remotamente; "
            "pode testar de novo?",
            "Agora deu 280, melhorou bastante! Obrigado",
            "Que ótimo! Seu protocolo é {protocol}. Qualquer coisa, é só chamar.",
        ),
    ),
    Topic(
        "sem-conexão",
        SUPPORT,
        "1",
        (
            "A luz LOS está vermelha no roteador",
            "Estou sem internet desde cedo",
            "Caiu a internet aqui, o roteador tá piscando vermelho",
            "Sem conexão nenhuma, já desliguei e liguei o modem",
        ),
        "Certo. Alguma luz do roteador está vermelha?",
        (
            "Olá, {first}, tudo bem? Sou {agent}. Qual luz está acesa no roteador?",
            "A LOS está vermelha piscando",
            "Isso indica sinal da fibra interrompido. Pode verificar se o cabo fino que chega "
            "no equipamento não está dobrado ou solto?",
            "Olhei, parece tudo certo",
            "Abri uma ordem de serviço; um técnico vai até você amanhã entre 8h e 12h.",
            "Beleza, vou ficar aguardando",
            "Combinado! Protocolo {protocol}. Vou acompanhar por aqui.",
        ),
    ),
    Topic(
        "boleto",
        BILLING,
        "2",
        (
            "Preciso da segunda via do boleto",
            "Oi, meu boleto não chegou esse mês",
            "Quero pagar a fatura atrasada, como faço?",
            "Vocês podem mandar o boleto por aqui?",
        ),
        "Posso ajudar com boletos. Informe o CPF do titular, por favor.",
        (
            "Olá, {first}! Aqui é {agent}, do financeiro. Pode confirmar o CPF do titular?",
            "Claro, é o mesmo do cadastro",
            "Encontrei a fatura com vencimento dia 10. Enviei o código de barras e o Pix "
            "copia e cola.",
            "Paguei pelo Pix agora",
            "Perfeito, o pagamento compensa em alguns minutos e a conexão é liberada.",
            "Já voltou, obrigada!",
            "Disponha! Protocolo {protocol}.",
        ),
    ),
    Topic(
        "mudança-de-plano",
        SALES,
        "3",
        (
            "Quero mudar para o plano de 500 mega",
            "Tem plano mais rápido? O meu tá pouco",
            "Vou mudar de endereço, como faço a transferência?",
        ),
        "Que bom! Vou te passar para o comercial.",
        (
            "Oi, {first}! Sou {agent}, do comercial. Temos 500 mega por R$ 119,90. Quer migrar?",
            "Muda alguma coisa na fidelidade?",
            "Não, mantém o contrato atual; só a mensalidade muda a partir da próxima fatura.",
            "Então pode fazer a mudança",
            "Feito! Em até 2 horas o novo plano estará ativo; reinicie o roteador depois.",
            "Ótimo, valeu",
            "Obrigado pela preferência! Protocolo {protocol}.",
        ),
    ),
    Topic(
        "cancelamento",
        SALES,
        "3",
        (
            "Quero cancelar minha internet",
            "Como faço para cancelar o contrato?",
            "Vou me mudar para outra cidade e preciso cancelar",
        ),
        "Entendi. Vou te transferir para um atendente.",
        (
            "Olá, {first}. Aqui é {agent}. Posso saber o motivo do cancelamento?",
            "Vou mudar para outra cidade",
            "Atendemos em várias cidades da região. Qual é o novo endereço?",
            "Vou para fora do estado",
            "Entendi. Registrei o pedido; a retirada do equipamento será agendada.",
            "Ok, obrigado",
            "Protocolo do cancelamento: {protocol}. Sentiremos sua falta!",
        ),
    ),
)

QUEUED_LINES = (
    "Vou te transferir para um atendente. Seu protocolo é {protocol}.",
    "Alguém pode me atender?",
    "Ainda estou aguardando",
)

STATES = (
    Conversation.State.BOT,
    Conversation.State.QUEUED,
    Conversation.State.OPEN,
    Conversation.State.PENDING,
    Conversation.State.RESOLVED,
)
STATE_WEIGHTS = (6, 10, 14, 6, 64)
PRIORITIES = tuple(Conversation.Priority.values)
PRIORITY_WEIGHTS = (5, 80, 12, 3)
NOTES = (
    "Cliente já reiniciou o roteador duas vezes antes de chamar.",
    "Verificar se há manutenção na região antes de abrir OS.",
    "Cliente pediu retorno no período da tarde.",
    "Pagamento confirmado no sistema financeiro.",
)


@dataclass
class Spec:
    """One conversation to create, before it has an id."""

    contact: int
    state: str
    last_at: datetime
    topic: Topic = field(default=TOPICS[0])


@dataclass
class Stats:
    contacts: int = 0
    conversations: int = 0
    messages: int = 0
    notes: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


class Command(BaseCommand):
    help = "Create demo teams, agents, customers and conversations (pt-BR); safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--conversations", type=int, default=300, help="How many (default 300)."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--password",
            default="",
            help="Password for new demo staff (default: $DEMO_PASSWORD, else a generated one "
            "printed once).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo contacts, their conversations and messages (and the demo "
            "subscribers) first (only reports what it would delete unless --commit is given too).",
        )
        parser.add_argument("--commit", action="store_true", help="Really delete with --reset.")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        count: int = options["conversations"]
        if count < 0 or options["batch_size"] < 1:
            raise CommandError("--conversations must be >= 0 and --batch-size >= 1.")
        self.rng = random.Random(options["seed"])  # noqa: S311 - demo data, not secrets
        self.batch_size: int = options["batch_size"]
        if options["reset"] and not options["commit"]:
            self._report_reset()
            self._seed_subscribers(options)
            return
        if options["reset"]:
            self._reset()

        teams = self._teams()
        inbox = self._inbox(teams[SUPPORT])
        staff = self._staff(teams, options["password"])
        tags = self._tags()
        self._canned(teams)
        stats = Stats()
        if count:
            existing = Conversation.objects.filter(
                contact__customer_code__startswith=DEMO_PREFIX
            ).count()
            if existing:
                self.stdout.write(
                    f"{existing} demo conversations exist already; nothing added "
                    "(--reset deletes them first)."
                )
            else:
                contact_ids = self._contacts(math.ceil(count * 0.75), options["seed"], stats)
                self._conversations(count, contact_ids, inbox, teams, staff, tags, stats)
        states = ", ".join(f"{state} {n}" for state, n in sorted(stats.by_state.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready in {time.monotonic() - started:.1f} s: {len(teams)} teams, "
                f"{len(STAFF)} staff, {len(tags)} tags, {len(CANNED)} canned replies, "
                f"{stats.contacts} new contacts, {stats.conversations} conversations"
                + (f" ({states})" if states else "")
                + f", {stats.messages} messages, {stats.notes} notes."
            )
        )
        self._seed_subscribers(options)
        if "seed_bot" in get_commands():
            # After the teams exist: the bot's menu is routed to them.
            call_command("seed_bot", stdout=self.stdout, stderr=self.stderr)

    def _seed_subscribers(self, options: dict[str, Any]) -> None:
        """The ISP's demo plans, subscribers and invoices, for the bot to look up.

        Called by name: conversations knows nothing of the subscribers app, and
        a project without it still seeds the helpdesk.
        """
        if "seed_subscribers" in get_commands():
            call_command(
                "seed_subscribers",
                stdout=self.stdout,
                stderr=self.stderr,
                reset=options["reset"],
                commit=options["commit"],
            )

    # --- Configuration -----------------------------------------------------------------

    def _teams(self) -> dict[str, Team]:
        teams = {}
        for name, (description, first, resolution, per_agent) in TEAMS.items():
            team, _created = Team.objects.get_or_create(
                name=name, defaults={"description": description}
            )
            TeamQueue.objects.get_or_create(
                team=team,
                defaults={
                    "first_response_minutes": first,
                    "resolution_minutes": resolution,
                    "max_active_per_agent": per_agent,
                },
            )
            teams[name] = team
        return teams

    def _inbox(self, support: Team) -> Inbox:
        inbox = Inbox.objects.filter(name="WhatsApp").first()
        if inbox is None:
            inbox = Inbox.objects.create(
                name="WhatsApp", address="+551140041234", default_team=support
            )
        return inbox

    def _staff(self, teams: dict[str, Team], password: str) -> dict[str, list[User]]:
        """Demo staff by team name (the supervisor is in every team's list)."""
        missing = [row for row in STAFF if not User.objects.filter(username=row[0]).exists()]
        generated = False
        if missing:
            password = password or os.environ.get("DEMO_PASSWORD", "")
            if not password:
                password, generated = generate_password(), True
        for username, name, role, team_names in missing:
            try:
                user_create(
                    username=username,
                    password=password,
                    role=role,
                    name=name,
                    teams=[teams[t] for t in team_names],
                )
            except ValidationError as exc:
                raise CommandError(
                    f"Password refused for {username}: " + " ".join(exc.messages)
                ) from None
        if missing:
            names = ", ".join(row[0] for row in missing)
            self.stdout.write(f"Created staff: {names}.")
            if generated:
                banner = "=" * 60
                self.stdout.write(
                    self.style.WARNING(
                        f"{banner}\nDemo staff password (shown only once): {password}\n{banner}"
                    )
                )
        users = {u.username: u for u in User.objects.filter(username__in=[r[0] for r in STAFF])}
        by_team: dict[str, list[User]] = {name: [] for name in teams}
        for username, _name, role, team_names in STAFF:
            if role == User.Role.AGENT:
                for team in team_names:
                    by_team[team].append(users[username])
        return by_team

    def _tags(self) -> dict[str, Tag]:
        return {
            name: Tag.objects.get_or_create(name=name, defaults={"color": color})[0]
            for name, color in TAGS
        }

    def _canned(self, teams: dict[str, Team]) -> None:
        for shortcut, title, team_name, text in CANNED:
            team = teams[team_name] if team_name else None
            CannedReply.objects.get_or_create(
                shortcut=shortcut, team=team, defaults={"title": title, "text": text}
            )

    # --- Contacts ----------------------------------------------------------------------

    def _contacts(self, count: int, seed: int, stats: Stats) -> list[int]:
        """Ids of the demo contacts DEMO-000001 ... (created if missing).

        Their own random stream: contact n is the same person whatever
        --conversations says, so a later run with more finds the first ones.
        """
        rng = random.Random(seed * 7919 + 1)  # noqa: S311
        existing = dict(
            Contact.objects.filter(customer_code__startswith=DEMO_PREFIX).values_list(
                "customer_code", "id"
            )
        )
        now, started = timezone.now(), time.monotonic()
        seen: set[str] = set()
        batch: list[dict[str, Any]] = []
        for n in range(1, count + 1):
            contact = self._contact(rng, n, seen, now)
            if contact["customer_code"] not in existing:
                batch.append(contact)
            if len(batch) >= self.batch_size:
                stats.contacts += self._insert_contacts(batch)
                batch = []
                self.stdout.write(f"Contacts: {n}/{count} ({time.monotonic() - started:.1f} s)")
        stats.contacts += self._insert_contacts(batch)
        codes = [f"{DEMO_PREFIX}{n:06d}" for n in range(1, count + 1)]
        ids = dict(
            Contact.objects.filter(customer_code__startswith=DEMO_PREFIX).values_list(
                "customer_code", "id"
            )
        )
        # A number already taken by a real contact was skipped: leave that one out.
        return [ids[code] for code in codes if code in ids]

    def _contact(self, rng: random.Random, n: int, seen: set[str], now: datetime) -> dict[str, Any]:
        while True:
            area = rng.choice(AREA_CODES)
            local = f"{rng.randint(6, 9)}{rng.randrange(10**7):07d}"
            phone = f"+55{area}9{local}"
            if phone not in seen:
                seen.add(phone)
                break
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        full = f"{first} {last}"
        # One in ten WhatsApp accounts predates the ninth digit: WhatsApp reports
        # them without it, and the contact must still carry the full number.
        wa_id = f"55{area}{local}" if rng.random() < 0.1 else phone[1:]
        contact: dict[str, Any] = {
            "bsuid": None,
            "wa_id": wa_id,
            "phone": phone,
            "username": "",
            "name": full if rng.random() < 0.4 else "",
            "profile_name": rng.choice((full, first, f"{first} {last[0]}.", f"{first} 🙂")),
            "document_encrypted": "",
            "document_hash": None,
            "customer_code": f"{DEMO_PREFIX}{n:06d}",
            "notes": "",
            "created_at": now,
            "updated_at": now,
        }
        if n <= 20:
            # A few with a CPF: each one costs a Fernet encryption.
            document = _cpf(rng)
            contact["document_encrypted"] = encrypt(document)
            contact["document_hash"] = document_hash(document)
        return contact

    def _insert_contacts(self, batch: list[dict[str, Any]]) -> int:
        """Insert the batch but the contacts whose number or CPF a real contact has."""
        if not batch:
            return 0
        phones = [row["phone"] for row in batch]
        wa_ids = [row["wa_id"] for row in batch]
        hashes = [row["document_hash"] for row in batch if row["document_hash"]]
        taken: set[str] = set()
        for row in Contact.objects.filter(
            Q(phone__in=phones) | Q(wa_id__in=wa_ids) | Q(document_hash__in=hashes)
        ).values_list("phone", "wa_id", "document_hash"):
            taken.update(value for value in row if value)
        rows = [
            row for row in batch if not {row["phone"], row["wa_id"], row["document_hash"]} & taken
        ]
        with transaction.atomic():
            _insert_rows(Contact, rows)
        return len(rows)

    # --- Conversations -----------------------------------------------------------------

    def _conversations(
        self,
        count: int,
        contact_ids: list[int],
        inbox: Inbox,
        teams: dict[str, Team],
        staff: dict[str, list[User]],
        tags: dict[str, Tag],
        stats: Stats,
    ) -> None:
        if not contact_ids:
            raise CommandError("No demo contact could be created (their numbers are taken).")
        specs = self._specs(count, len(contact_ids))
        ids = _reserve_ids(Conversation, len(specs))
        schedules = {
            queue.team_id: (queue, _schedule(queue))
            for queue in TeamQueue.objects.filter(team__in=teams.values())
        }
        context = _Context(inbox, teams, staff, tags, schedules, timezone.now())
        for start in range(0, len(specs), self.batch_size):
            chunk = list(zip(ids[start : start + self.batch_size], specs[start:], strict=False))
            built = [
                self._build(pk, contact_ids[spec.contact], spec, context) for pk, spec in chunk
            ]
            messages = [m for b in built for m in b.messages]
            notes = [b.note for b in built if b.note is not None]
            with transaction.atomic():
                _insert_rows(Conversation, [b.conversation for b in built])
                _insert_rows(Message, messages)
                Conversation.tags.through.objects.bulk_create(
                    [
                        Conversation.tags.through(conversation_id=b.conversation["id"], tag_id=t)
                        for b in built
                        for t in b.tag_ids
                    ],
                    batch_size=self.batch_size,
                )
                Note.objects.bulk_create(notes, batch_size=self.batch_size)
            stats.conversations += len(built)
            stats.messages += len(messages)
            stats.notes += len(notes)
            for b in built:
                state = b.conversation["state"]
                stats.by_state[state] = stats.by_state.get(state, 0) + 1
            self.stdout.write(
                f"Conversations: {stats.conversations}/{count} "
                f"({stats.messages} messages, {time.monotonic() - context.started:.1f} s)"
            )
        self.stdout.write(f"Conversations done in {time.monotonic() - context.started:.1f} s.")
        # Last seen: when the customer last wrote.
        last = Conversation.objects.filter(contact=OuterRef("pk"))
        last = last.values("contact").annotate(last=Max("last_inbound_at")).values("last")
        for start in range(0, len(contact_ids), 20000):
            Contact.objects.filter(pk__in=contact_ids[start : start + 20000]).update(
                last_seen_at=Subquery(last)
            )

    def _specs(self, count: int, contacts: int) -> list[Spec]:
        rng, now = self.rng, timezone.now()
        specs = []
        for _n in range(count):
            state = rng.choices(STATES, STATE_WEIGHTS)[0]
            last_at = now - _age(rng, state)
            specs.append(Spec(rng.randrange(contacts), state, last_at, rng.choice(TOPICS)))
        # Only a contact's newest conversation may still be active (one per inbox).
        newest: dict[int, Spec] = {}
        for spec in specs:
            if spec.contact not in newest or spec.last_at > newest[spec.contact].last_at:
                newest[spec.contact] = spec
        for spec in specs:
            if newest[spec.contact] is not spec:
                spec.state = Conversation.State.RESOLVED
        # Every state on show, however few conversations were asked for.
        present = {spec.state for spec in specs}
        spare = [s for s in newest.values() if s.state == Conversation.State.RESOLVED]
        for state in STATES:
            if state not in present and spare:
                spec = spare.pop(rng.randrange(len(spare)))
                spec.state, spec.last_at = state, now - _age(rng, state)
        # Ids (and so protocols) in the order the conversations started.
        specs.sort(key=lambda s: s.last_at)
        return specs

    def _build(self, pk: int, contact_id: int, spec: Spec, ctx: _Context) -> _Built:
        rng, topic, state = self.rng, spec.topic, spec.state
        State = Conversation.State
        in_bot = state in (State.BOT, State.QUEUED)
        team = ctx.teams[SUPPORT] if state == State.BOT else ctx.teams[topic.team]
        agent = None if in_bot else rng.choice(ctx.staff[topic.team])
        first = rng.choice(FIRST_NAMES)
        lines = _script(rng, state, topic)
        # Lay the messages out backwards from the last one.
        first_agent = next((i for i, (sender, _) in enumerate(lines) if sender == "agent"), None)
        times = [spec.last_at]
        for i in range(len(lines) - 1, 0, -1):
            if lines[i][0] == "bot":
                gap = rng.uniform(2, 10)
            elif i == first_agent:
                gap = rng.uniform(60, 30 * 60)  # waiting in the queue
            else:
                gap = rng.uniform(20, 10 * 60)
            times.append(times[-1] - timedelta(seconds=gap))
        times.reverse()
        created = times[0]
        protocol = f"{timezone.localdate(created):%Y%m%d}-{pk:06d}"
        conversation: dict[str, Any] = {
            "id": pk,
            "protocol": protocol,
            "contact_id": contact_id,
            "inbox_id": ctx.inbox.pk,
            "team_id": team.pk,
            "assignee_id": agent.pk if agent else None,
            "state": state,
            "priority": rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            "created_at": created,
            "updated_at": ctx.now,
            "last_message_at": times[-1],
            "first_response_at": None,
        }
        agent_name = agent.name.split()[0] if agent else ""
        messages = []
        unread = 0
        for k, ((sender, text), at) in enumerate(zip(lines, times, strict=True)):
            message: dict[str, Any] = {
                "conversation_id": pk,
                "created_at": at,
                "text": text.format(first=first, agent=agent_name, protocol=protocol),
                "external_id": f"wamid.DEMO.{pk}.{k}",
                "sender_type": sender,
            }
            if sender == "contact":
                message["direction"] = Message.Direction.IN
                message["status"] = Message.Status.RECEIVED
                conversation["last_inbound_at"] = at
                unread += 1
                if topic.tag == "sem-conexão" and k and rng.random() < 0.1:
                    message["kind"] = Message.Kind.IMAGE
                    message["text"] = "Segue a foto do roteador"
                    message["media_id"] = f"demo-media-{pk}-{k}"
                    message["media_mime_type"] = "image/jpeg"
            else:
                message["direction"] = Message.Direction.OUT
                if sender == "agent":
                    message["sender_user_id"] = agent.pk if agent else None
                    unread = 0
                    if conversation["first_response_at"] is None:
                        conversation["first_response_at"] = at
                _set_delivery(rng, message, ctx.now)
            messages.append(message)
        conversation["unread_count"] = 0 if state == State.RESOLVED else unread
        if state != State.BOT:
            handed_off = state == State.QUEUED and len(times) > 3
            queued_at = conversation["queued_at"] = times[3] if handed_off else created
            queue, schedule = ctx.schedules.get(team.pk, (None, None))
            if queue is not None and schedule is not None:
                conversation["first_response_due_at"] = add_business_minutes(
                    queued_at, queue.first_response_minutes, schedule
                )
                conversation["resolution_due_at"] = add_business_minutes(
                    queued_at, queue.resolution_minutes, schedule
                )
        if state == State.RESOLVED:
            conversation["resolved_at"] = min(
                times[-1] + timedelta(minutes=rng.uniform(1, 20)), ctx.now
            )
            conversation["resolved_by_id"] = agent.pk if agent else None
        tag_ids = [ctx.tags[topic.tag].pk] if not in_bot and rng.random() < 0.6 else []
        note = None
        if agent is not None and rng.random() < 0.08:
            note = Note(
                conversation_id=pk,
                author=agent,
                text=rng.choice(NOTES),
                created_at=times[min(2, len(times) - 1)],
            )
        return _Built(conversation, messages, tag_ids, note)

    # --- Reset -------------------------------------------------------------------------

    def _report_reset(self) -> None:
        contacts = Contact.objects.filter(customer_code__startswith=DEMO_PREFIX)
        conversations = Conversation.objects.filter(contact__in=contacts)
        messages = Message.objects.filter(conversation__in=conversations.values("id"))
        self.stdout.write(
            f"--reset would delete {conversations.count()} conversations, {messages.count()} "
            f"messages and {contacts.count()} contacts of the demo (customer code "
            f"{DEMO_PREFIX}…). Nothing deleted: add --commit to do it."
        )

    def _reset(self) -> None:
        contacts = Contact.objects.filter(customer_code__startswith=DEMO_PREFIX)
        conversations = Conversation.objects.filter(contact__in=contacts)
        conversation_ids = conversations.values("id")
        with transaction.atomic():
            # Messages are the big table: one DELETE, not Django's collector
            # loading every row to null the replies that point at it.
            messages = _delete_where(Message, "conversation_id", conversation_ids)
            notes = Note.objects.filter(conversation__in=conversation_ids).delete()[0]
            Conversation.tags.through.objects.filter(conversation__in=conversation_ids).delete()
            removed = _delete_where(Conversation, "id", conversation_ids)
            Contact.tags.through.objects.filter(contact__in=contacts).delete()
            contacts_removed = _delete_where(Contact, "id", contacts.values("id"))
        self.stdout.write(
            f"Reset: deleted {removed} conversations, {messages} messages, {notes} notes "
            f"and {contacts_removed} contacts of the demo."
        )


@dataclass
class _Context:
    inbox: Inbox
    teams: dict[str, Team]
    staff: dict[str, list[User]]
    tags: dict[str, Tag]
    schedules: dict[int, tuple[TeamQueue, Schedule | None]]
    now: datetime
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Built:
    conversation: dict[str, Any]
    messages: list[dict[str, Any]]
    tag_ids: list[int]
    note: Note | None


def _age(rng: random.Random, state: str) -> timedelta:
    """How long ago a conversation in ``state`` last had a message."""
    if state == Conversation.State.BOT:
        return timedelta(minutes=rng.uniform(0.5, 30))
    if state == Conversation.State.QUEUED:
        return timedelta(minutes=rng.uniform(1, 180))
    if state == Conversation.State.OPEN:
        return timedelta(minutes=rng.uniform(1, 20 * 60))
    if state == Conversation.State.PENDING:
        return timedelta(hours=rng.uniform(1, 48))
    return timedelta(hours=rng.uniform(1, 30 * 24))


def _script(rng: random.Random, state: str, topic: Topic) -> list[tuple[str, str]]:
    """(sender, text) lines of one conversation: 2 to 8 of them."""
    State = Conversation.State
    opener = ("contact", rng.choice(topic.openers))
    if state == State.BOT:
        lines = [opener, ("bot", BOT_MENU), ("contact", topic.option), ("bot", topic.bot_ask)]
        return lines[: rng.randint(2, 4)]
    if state == State.QUEUED:
        lines = [opener, ("bot", BOT_MENU), ("contact", topic.option), ("bot", QUEUED_LINES[0])]
        lines += [("contact", line) for line in QUEUED_LINES[1:]]
        return lines[: rng.randint(2, 6)]
    senders = ("agent", "contact") * 4
    lines = [opener, *zip(senders, topic.dialog, strict=False)]
    lines = lines[: rng.randint(2, 8)]
    if state == State.PENDING and lines[-1][0] == "contact":
        lines.pop()  # waiting on the customer: the agent wrote last
    return lines


def _set_delivery(rng: random.Random, message: dict[str, Any], now: datetime) -> None:
    at = message["created_at"]
    if rng.random() < 0.01:
        message["status"] = Message.Status.FAILED
        message["failed_at"] = at + timedelta(seconds=2)
        message["error_code"] = "131026"
        message["error_title"] = "Message undeliverable"
        return
    message["sent_at"] = at + timedelta(seconds=1)
    message["delivered_at"] = at + timedelta(seconds=rng.uniform(2, 30))
    read_at = at + timedelta(seconds=rng.uniform(30, 1800))
    # Always draw, so the stream (and the data) does not depend on the clock.
    seen_soon = rng.random() < 0.6
    if read_at <= now and (now - at > timedelta(hours=1) or seen_soon):
        message["status"], message["read_at"] = Message.Status.READ, read_at
    else:
        message["status"] = Message.Status.DELIVERED


def _schedule(queue: TeamQueue) -> Schedule | None:
    try:
        return parse_schedule(queue.business_hours)
    except (ValueError, TypeError, AttributeError):
        return None


def _cpf(rng: random.Random) -> str:
    """A valid CPF (check digits right), never all one digit."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        if len(set(digits)) > 1:
            break
    for length in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(length + 1, 1, -1), strict=True))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))


def _reserve_ids(model: type[Conversation], count: int) -> list[int]:
    """``count`` primary keys nobody else will take, in ascending order.

    Protocols are built from the id, so the ids are chosen before the insert:
    on PostgreSQL drawn from the table's own sequence (safe while the site
    runs); elsewhere after the largest id ever used.
    """
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return sorted(row[0] for row in cursor.fetchall())
        top = model.objects.aggregate(top=Max("id"))["top"] or 0
        if connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            top = max(top, row[0] if row else 0)
    return list(range(top + 1, top + 1 + count))


def _delete_where(model: type[Any], column: str, subquery: Any) -> int:
    sql, params = subquery.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {connection.ops.quote_name(column)} IN ({sql})",  # noqa: S608
            params,
        )
        return cursor.rowcount


# Values of NOT NULL columns a row may leave out (Django sets no database defaults).
_ROW_DEFAULTS: dict[str, Any] = {
    "kind": Message.Kind.TEXT,
    "text": "",
    "payload": "{}",
    "media_id": "",
    "media_mime_type": "",
    "media_file": "",
    "error_code": "",
    "error_title": "",
    "error_detail": "",
}


def _column_default(field: Any) -> Any:
    """What a row that leaves ``field`` out gets: the listed value, else the
    model field's own default (JSON fields as text), else NULL."""
    if field.attname in _ROW_DEFAULTS:
        return _ROW_DEFAULTS[field.attname]
    if field.has_default():
        value = field.get_default()
        return json.dumps(value) if field.get_internal_type() == "JSONField" else value
    return None


def _insert_rows(model: type[Any], rows: list[dict[str, Any]]) -> None:
    """Insert plain rows (field attname -> value) without building model
    instances: COPY on PostgreSQL, executemany elsewhere. Ten times faster
    than bulk_create for the message table."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if f.attname in rows[0] or f.attname != "id"]
    names = [f.attname for f in fields]
    defaults = {f.attname: _column_default(f) for f in fields}
    values = [tuple(row.get(name, defaults[name]) for name in names) for row in rows]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            return
        adapt = connection.ops.adapt_datetimefield_value
        values = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in values]
        placeholders = ", ".join(["%s"] * len(fields))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608
            values,
        )
