"""What the bot says that admins do not edit (the editable texts are in
``BotSettings``). The bot speaks pt-BR only: its flows (CPF/CNPJ, boleto, PIX,
desbloqueio de confiança) exist only in Brazil."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

ASK_DOCUMENT = (
    "Para continuar, preciso confirmar o titular do contrato. Por favor, envie o *CPF* ou "
    "*CNPJ* do titular (só os números)."
)
INVALID_DOCUMENT = "Esse CPF/CNPJ não parece válido. 🤔 Confira os números e envie de novo."
DOCUMENT_NOT_FOUND = (
    "Não encontrei nenhum cadastro com esse CPF/CNPJ. Confira os números e envie de novo."
)
IDENTIFIED = "Encontrei seu cadastro, {name}! ✅"
IDENTIFICATION_FAILED = (
    "Não consegui localizar seu cadastro. Vou chamar alguém da equipe para ajudar."
)
DIRECTORY_DOWN = "Não consegui consultar seu cadastro agora. Vou transferir você para um atendente."

NO_OPEN_INVOICES = "Você não tem nenhuma fatura em aberto. 🎉 Está tudo em dia!"
CHOOSE_INVOICE = "Você tem {count} faturas em aberto. Qual delas você quer?"
INVOICE = (
    "🧾 *Fatura {code}*\n"
    "Valor: *{amount}*\n"
    "Vencimento: *{due}*{overdue}\n\n"
    "*Linha digitável do boleto:*\n{line}"
)
INVOICE_OVERDUE = " (vencida)"
INVOICE_NO_LINE = "(boleto indisponível para esta fatura)"
PIX = "*PIX copia e cola* (copie a mensagem abaixo e cole no app do seu banco):"
PAYMENT_NOTE = (
    "Pagamentos por PIX são confirmados em poucos minutos; por boleto, em até 3 dias úteis."
)

UNLOCKED = (
    "Pronto, {name}! 🔓 Sua internet foi liberada até *{until}*.\n"
    "Pode levar até 5 minutos para voltar; se não voltar, desligue o roteador da tomada por "
    "30 segundos e ligue de novo. Para evitar um novo bloqueio, pague a fatura em aberto até lá."
)
ALREADY_UNLOCKED = "Seu acesso já está liberado até *{until}*. 👍"
UNLOCK_USED_RECENTLY = (
    "O desbloqueio de confiança já foi usado recentemente neste contrato. Ele poderá ser "
    "usado de novo a partir de *{next}*."
)
UNLOCK_NOT_SUSPENDED = (
    "Seu contrato está ativo, sem bloqueio por pagamento — não é preciso desbloquear. 🙂"
)
UNLOCK_NOT_FOR_PAYMENT = (
    "Seu contrato está suspenso, mas não por falta de pagamento, então o desbloqueio de "
    "confiança não se aplica."
)
UNLOCK_CANCELLED = "Este contrato está cancelado, então não é possível desbloquear."
OFFER_AGENT = "Quer falar com um atendente?"

SUSPENDED_FOR_PAYMENT = (
    "Verifiquei que seu contrato está *suspenso por falta de pagamento*, por isso a internet "
    "está bloqueada. Posso liberar seu acesso por alguns dias (desbloqueio de confiança) ou "
    "enviar a fatura para pagamento."
)
OUTAGE = (
    "⚠️ Identificamos uma falha na sua região (*{region}*): {title}.{description}\n"
    "{forecast}\n"
    "Nossa equipe já está trabalhando nisso e sua conexão volta sozinha quando normalizar — "
    "não precisa abrir chamado."
)
OUTAGE_FORECAST = "Previsão de normalização: *{at}*."
OUTAGE_NO_FORECAST = "Ainda não temos previsão de normalização."

NO_INTERNET_STEPS = (
    "Vamos tentar resolver juntos: 🛠️\n"
    "1️⃣ Confira se os cabos do roteador e da ONU (o aparelhinho da fibra) estão bem "
    "encaixados e se os dois estão ligados na tomada.\n"
    "2️⃣ Olhe as luzes da ONU: a luz *PON* deve estar acesa e fixa, e a luz *LOS* apagada. "
    "Se a LOS estiver *vermelha*, o problema é no cabo de fibra — não mexa nele.\n"
    "3️⃣ Desligue o roteador e a ONU da tomada, espere *30 segundos* e ligue de novo. Aguarde "
    "uns 2 minutos até as luzes estabilizarem."
)
SLOW_INTERNET_STEPS = (
    "Vamos melhorar essa velocidade: 🛠️\n"
    "1️⃣ Desligue o roteador da tomada, espere *30 segundos* e ligue de novo.\n"
    "2️⃣ Se estiver no Wi-Fi, chegue mais perto do roteador ou teste com um cabo de rede; "
    "paredes e espelhos atrapalham o sinal.\n"
    "3️⃣ Veja se há muitos aparelhos baixando arquivos ou assistindo vídeos ao mesmo tempo.\n"
    "4️⃣ Faça um teste de velocidade perto do roteador (por exemplo, em fast.com)."
)
DID_IT_WORK = "Depois de seguir esses passos, sua internet voltou ao normal?"
GLAD_IT_WORKS = "Que ótimo! 🎉 Fico feliz que tenha resolvido."
TAKE_YOUR_TIME = "Sem pressa! 😊 Quando terminar, me diga se a internet voltou."

ANYTHING_ELSE = "Posso ajudar em mais alguma coisa?"
HANDOFF_WAIT_UNKNOWN = "alguns minutos"
MEDIA_NOT_UNDERSTOOD = (
    "Recebi seu arquivo, mas ainda não consigo ver imagens nem ouvir áudios. 🙈 Escreva em "
    "poucas palavras o que você precisa ou escolha uma opção do menu."
)

# Buttons (WhatsApp: at most 3, titles up to 20 characters).
BUTTON_YES_WORKED = "Sim, voltou"
BUTTON_NO_WORKED = "Não, continua"
BUTTON_MENU = "Ver o menu"
BUTTON_DONE = "Não, obrigado"
BUTTON_AGENT = "Falar c/ atendente"
BUTTON_UNLOCK = "Desbloquear"
BUTTON_INVOICE = "2ª via / PIX"
MENU_BUTTON = "Ver opções"
MENU_SECTION = "Atendimento"
INVOICE_LIST_BUTTON = "Ver faturas"

# Internal notes (staff read these; they are in pt-BR like the staff).
NOTE_HEADER = "🤖 Resumo do bot"
INTENT_NAMES = {
    "invoice": "2ª via de fatura",
    "trust_unlock": "desbloqueio de confiança",
    "no_internet": "sem internet",
    "slow_internet": "internet lenta",
    "technical_visit": "visita técnica",
    "plans": "planos / mudança de plano",
    "cancellation": "cancelamento",
    "agent": "falar com atendente",
}
REASON_NAMES = {
    "requested": "o cliente pediu um atendente",
    "intent": "assunto atendido por pessoas",
    "not_understood": "o bot não entendeu o pedido",
    "identification_failed": "não foi possível identificar o cliente",
    "troubleshooting_failed": "os passos básicos não resolveram",
    "directory_error": "falha ao consultar o cadastro",
    "bot_disabled": "bot desligado",
    "unlock_refused": "desbloqueio de confiança não disponível",
}


def money(amount: Decimal) -> str:
    """R$ 1.234,56"""
    text = f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"R$ {text}"


def day(value: date) -> str:
    return f"{value:%d/%m/%Y}"


def moment(value: datetime) -> str:
    local = timezone.localtime(value)
    return f"{local:%d/%m/%Y} às {local:%H:%M}"


def wait(minutes: int | None) -> str:
    if minutes is None:
        return HANDOFF_WAIT_UNKNOWN
    if minutes < 60:
        return f"cerca de {minutes} minuto{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"cerca de {hours} hora{'s' if hours != 1 else ''}"
