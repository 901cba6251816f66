"""Route the bot's menu to the demo teams and add a few knowledge-base answers,
so every flow can be tried in the simulator right after ``seed_demo``.

Only fills what is empty: a menu option that already has a team keeps it, an
article with the same question is left alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.models import Team
from chatbot.models import BotSettings, KnowledgeArticle, MenuOption

# Intent -> demo team (names as seed_demo creates them).
ROUTES = {
    "invoice": "Financeiro",
    "trust_unlock": "Financeiro",
    "no_internet": "Suporte técnico",
    "slow_internet": "Suporte técnico",
    "technical_visit": "Suporte técnico",
    "plans": "Comercial",
    "cancellation": "Comercial",
    "agent": "Suporte técnico",
}

ARTICLES = [
    (
        "Qual o horário de atendimento?",
        "Nosso atendimento humano funciona de segunda a sexta, das 8h às 18h, e aos sábados, "
        "das 8h às 12h. O assistente virtual atende 24 horas por dia.",
        "horario, horário de atendimento, que horas abre, funciona sabado, abre domingo",
    ),
    (
        "Como trocar a senha do Wi-Fi?",
        "Para trocar a senha do Wi-Fi, acesse 192.168.0.1 no navegador de um aparelho "
        "conectado à sua rede, entre com o usuário e a senha que estão na etiqueta do "
        "roteador e vá em *Wireless > Segurança*. Se preferir, um atendente faz isso para você.",
        "senha do wifi, trocar senha, mudar senha, senha da internet, nome da rede",
    ),
    (
        "Quais as formas de pagamento?",
        "Você pode pagar por boleto (em qualquer banco, lotérica ou app) ou por PIX copia e "
        "cola — é só pedir a 2ª via aqui no menu. Pagamentos por PIX são confirmados em poucos "
        "minutos.",
        "forma de pagamento, formas de pagamento, cartao, cartão de credito, debito automatico",
    ),
]


class Command(BaseCommand):
    help = "Route the bot's menu to the demo teams and add demo knowledge-base answers."

    def handle(self, *args: Any, **options: Any) -> None:
        BotSettings.objects.get_or_create(pk=1)
        teams = {t.name: t for t in Team.objects.filter(name__in=set(ROUTES.values()))}
        routed = 0
        for option in MenuOption.objects.filter(team__isnull=True):
            team = teams.get(ROUTES.get(option.intent, ""))
            if team is not None:
                option.team = team
                option.save(update_fields=["team"])
                routed += 1
        added = 0
        for question, answer, keywords in ARTICLES:
            _article, created = KnowledgeArticle.objects.get_or_create(
                question=question, defaults={"answer": answer, "keywords": keywords}
            )
            added += created
        self.stdout.write(
            f"Bot: {routed} menu option(s) routed to teams, {added} knowledge-base answer(s) added."
        )
