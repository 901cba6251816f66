"""How the bot reads free text: the intent behind what customers really write
(typos, no accents, caps, abbreviations, emojis), menu numbers, yes/no, and
what must not be read as anything."""

from __future__ import annotations

import pytest

from chatbot import matching

# (what the customer writes, the intent the bot must read)
INTENTS: list[tuple[str, str]] = [
    # 2ª via / boleto / PIX
    ("oi, preciso da segunda via do boleto", "invoice"),
    ("segunda via", "invoice"),
    ("2 via", "invoice"),
    # Phrasings first tried by hand after the table was written.
    ("a internet ta muito ruim hoje", "slow_internet"),
    ("o roteador ta piscando vermelho", "no_internet"),
    ("nao consigo acessar nada", "no_internet"),
    ("quero falar com o financeiro", "invoice"),
    ("quanto ta a minha conta", "invoice"),
    ("quero falar com o comercial", "plans"),
    ("2a via", "invoice"),
    ("2ª via do boleto", "invoice"),
    ("2° via", "invoice"),
    ("2via", "invoice"),
    ("segunda-via", "invoice"),
    ("qro a 2 via", "invoice"),
    ("kero a segunda via", "invoice"),
    ("bolto", "invoice"),
    ("boleta", "invoice"),
    ("BOLETO!!!", "invoice"),
    ("boleto 🙏", "invoice"),
    ("segunda via da fatura pfv", "invoice"),
    ("Bom dia! Gostaria de solicitar a 2ª via da minha fatura.", "invoice"),
    ("vcs podem me mandar o boleto?", "invoice"),
    ("me manda o pix", "invoice"),
    ("qual a chave pix pra pagar", "invoice"),
    ("quero pagar minha conta", "invoice"),
    ("como faço pra pagar?", "invoice"),
    ("codigo de barras da fatura", "invoice"),
    ("linha digitável", "invoice"),
    ("minha conta ta atrasada", "invoice"),
    ("faturaa do mes", "invoice"),
    ("quanto ta a mensalidade", "invoice"),
    ("me envia a 2ªvia", "invoice"),
    # desbloqueio de confiança
    ("desbloqueio de confiança", "trust_unlock"),
    ("DESBLOQUEIO DE CONFIANCA", "trust_unlock"),
    ("me desbloqueia ai", "trust_unlock"),
    ("paguei e continua bloqueado", "trust_unlock"),
    ("paguei e ainda ta bloqueada", "trust_unlock"),
    ("minha internet foi bloqueada", "trust_unlock"),
    ("desbloquear minha net", "trust_unlock"),
    ("libera minha internet pfv", "trust_unlock"),
    ("me libera ai que pago amanha", "trust_unlock"),
    ("já paguei, pode liberar?", "trust_unlock"),
    ("cortaram minha net", "trust_unlock"),
    ("internet cortada por falta de pagamento", "trust_unlock"),
    ("minha internet ta suspensa", "trust_unlock"),
    ("quero religar minha internet", "trust_unlock"),
    ("to bloqueado", "trust_unlock"),
    # sem internet
    ("ta sem internet aqui", "no_internet"),
    ("net caiu dnv", "no_internet"),
    ("minha net caiu", "no_internet"),
    ("a net caiu de novo 😡", "no_internet"),
    ("SEM NET", "no_internet"),
    ("tô sem net desde cedo", "no_internet"),
    ("fiquei sem internet", "no_internet"),
    ("nao tenho internet", "no_internet"),
    ("caiu a internet", "no_internet"),
    ("a internet parou", "no_internet"),
    ("minha internet não está funcionando", "no_internet"),
    ("a net n ta funcionando", "no_internet"),
    ("internet nao funciona", "no_internet"),
    ("o wi-fi não conecta", "no_internet"),
    ("a internet sumiu", "no_internet"),
    ("internet fora do ar", "no_internet"),
    ("sem sinal", "no_internet"),
    ("o modem está com a luz vermelha", "no_internet"),
    ("luz los piscando", "no_internet"),
    ("minha internet nao pega", "no_internet"),
    ("sem conexão", "no_internet"),
    ("internet ta off", "no_internet"),
    ("acabou a internet", "no_internet"),
    ("paguei o boleto e a internet nao voltou", "no_internet"),
    # internet lenta
    ("oi boa tarde, minha net ta muito lenta desde ontem", "slow_internet"),
    ("internet lenta", "slow_internet"),
    ("net lentaaaa", "slow_internet"),
    ("a internet ta travando muito", "slow_internet"),
    ("netflix travando", "slow_internet"),
    ("internet oscilando", "slow_internet"),
    ("fica caindo toda hora", "slow_internet"),
    ("velocidade baixa", "slow_internet"),
    ("net muito devagar", "slow_internet"),
    ("net lerda", "slow_internet"),
    ("ta dando lag no jogo", "slow_internet"),
    ("ping alto", "slow_internet"),
    ("o wifi ta fraco", "slow_internet"),
    ("a internet está péssima", "slow_internet"),
    ("não chega a velocidade contratada", "slow_internet"),
    ("demora pra carregar", "slow_internet"),
    ("a conexão ta instável", "slow_internet"),
    # visita técnica
    ("preciso de um tecnico aqui em casa", "technical_visit"),
    ("visita técnica", "technical_visit"),
    ("quero agendar uma visita", "technical_visit"),
    ("manda um técnico pfv", "technical_visit"),
    ("quando o tecnico vem?", "technical_visit"),
    ("o roteador queimou", "technical_visit"),
    ("cabo rompido na rua", "technical_visit"),
    ("o fio da internet arrebentou", "technical_visit"),
    ("mudança de endereço", "technical_visit"),
    ("preciso trocar o roteador", "technical_visit"),
    # planos
    ("quanto custa o plano de 1 giga", "plans"),
    ("quais planos vocês têm?", "plans"),
    ("quero mudar de plano", "plans"),
    ("quero aumentar minha velocidade", "plans"),
    ("upgrade", "plans"),
    ("qual o valor do plano de 500 mega", "plans"),
    ("quero contratar internet", "plans"),
    ("tem promoção?", "plans"),
    ("qual o preço?", "plans"),
    ("tem cobertura na minha rua?", "plans"),
    # cancelamento
    ("quero cancelar meu plano", "cancellation"),
    ("quero cancelar o meu plano de 300 mega", "cancellation"),
    ("cancelar", "cancellation"),
    ("cancelamento", "cancellation"),
    ("cancelameto", "cancellation"),
    ("kero cancelar a internet", "cancellation"),
    ("cancela minha internet", "cancellation"),
    ("cancelar contrato", "cancellation"),
    ("quero encerrar meu contrato", "cancellation"),
    ("nao quero mais a internet de vcs", "cancellation"),
    ("qual a multa de cancelamento?", "cancellation"),
    # atendente
    ("quero falar com um atendente", "agent"),
    ("falar com humano", "agent"),
    ("ATENDENTE!!", "agent"),
    ("atendimento humano", "agent"),
    ("falar c atendente", "agent"),
    ("me passa pra um atendente pfv", "agent"),
    ("quero falar com uma pessoa", "agent"),
    ("preciso falar com alguém", "agent"),
    ("quero falar com gente de verdade", "agent"),
    ("não quero falar com robô", "agent"),
    ("quero falar com o suporte", "agent"),
    ("chama alguém aí", "agent"),
]

# Nothing asked yet, or nothing the rules should claim to understand.
NO_INTENT: list[str] = [
    "oi",
    "olá",
    "bom dia",
    "boa tarde!",
    "oi, tudo bem?",
    "ok",
    "okay",
    "obrigado",
    "obrigada!",
    "valeu",
    "vlw",
    "blz",
    "tchau",
    "sim",
    "não",
    "kkkkk",
    "👍",
    "🙏🙏",
    "1",
    "2",
    "3️⃣",
    "123",
    "teste",
    "hmm",
    "banana",
    "quero",
    "pode ser",
    "tá bom",
    "entendi",
    "como assim?",
    "preciso de ajuda",
    "meu nome é Maria",
    "amanhã eu vejo",
    "segunda-feira eu volto",
    "vou pegar meu filho na escola",
    "comprei à vista",
    "toda hora eu perco a chave de casa",
    "quero ver meu contrato",
    "já estou lendo",
    "não quero mais nada, obrigada",
    "não quero mais esperar",
    "",
]


@pytest.mark.parametrize(("text", "intent"), INTENTS, ids=[t for t, _i in INTENTS])
def test_reads_the_intent(text: str, intent: str) -> None:
    found = matching.intent_of(text)

    assert found is not None, f"{text!r} read as nothing"
    assert found.intent == intent


@pytest.mark.parametrize("text", NO_INTENT, ids=[t or "empty" for t in NO_INTENT])
def test_reads_no_intent(text: str) -> None:
    assert matching.intent_of(text) is None


NUMBERS: list[tuple[str, int | None]] = [
    ("1", 1),
    ("2.", 2),
    (" 4 ", 4),
    ("10", 10),
    ("opção 2", 2),
    ("opcao2", 2),
    ("Opcao 3", 3),
    ("opção numero 5", 5),
    ("número 5", 5),
    ("item 6", 6),
    ("a 2", 2),
    ("quero a 7", 7),
    ("3️⃣", 3),
    ("opção 8️⃣", 8),
    ("2)", 2),
    ("oi", None),
    ("", None),
    ("123", None),
    ("1 2", None),
    ("2 via", None),
    ("segunda", None),
    ("R$ 50,00", None),
]


@pytest.mark.parametrize(("text", "number"), NUMBERS, ids=[t or "empty" for t, _n in NUMBERS])
def test_number_answer(text: str, number: int | None) -> None:
    assert matching.number_answer(text) == number


YES = [
    "sim",
    "Sim!",
    "SIM",
    "s",
    "siiim",
    "sim voltou",
    "sim, voltou",
    "voltou",
    "voltou sim",
    "já voltou",
    "funcionou",
    "funcionou, obrigado",
    "deu certo",
    "resolveu",
    "agora foi",
    "tá funcionando",
    "ok",
    "isso",
    "claro",
    "pode ser",
    "quero",
    "quero sim",
    "aham",
    "positivo",
    "com certeza",
    "já tá normal",
    "👍",
]
NO = [
    "não",
    "nao",
    "NÃO",
    "n",
    "não voltou",
    "nao voltou ainda",
    "não funcionou",
    "nao deu certo",
    "não resolveu",
    "ainda não",
    "continua",
    "continua sem internet",
    "continua a mesma coisa",
    "nada",
    "negativo",
    "não, obrigado",
    "nao quero",
]
NEITHER = ["talvez", "oi", "boleto", "", "não sei", "sei la", "ok, vou testar", "peraí"]


@pytest.mark.parametrize("text", YES)
def test_yes(text: str) -> None:
    assert matching.is_yes(text)
    assert not matching.is_no(text)


@pytest.mark.parametrize("text", NO)
def test_no(text: str) -> None:
    assert matching.is_no(text)
    assert not matching.is_yes(text)


@pytest.mark.parametrize("text", NEITHER, ids=[t or "empty" for t in NEITHER])
def test_neither_yes_nor_no(text: str) -> None:
    assert not matching.is_yes(text)
    if text != "não sei":  # a "não" of sorts: the bot may read it as no, never as yes
        assert not matching.is_no(text)


@pytest.mark.parametrize(
    ("text", "wait"),
    [
        ("ok, vou testar", True),
        ("peraí", True),
        ("pera ai que vou reiniciar", True),
        ("um minuto", True),
        ("sim", False),
        ("não voltou", False),
    ],
)
def test_wait(text: str, wait: bool) -> None:
    assert matching.is_wait(text) is wait


GREETINGS_ONLY = [
    "oi",
    "Oi!",
    "oii",
    "oiii",
    "oie",
    "olá",
    "Ola, bom dia",
    "bom dia",
    "boa tarde, tudo bem?",
    "boa noite!!",
    "e aí",
    "opa",
    "oi pessoal",
    "Oi 😊",
    "",
]
NOT_GREETINGS_ONLY = [
    "oi, preciso do boleto",
    "bom dia, minha internet caiu",
    "boa tarde, quero cancelar",
    "obrigado",
    "ok",
    "1",
]


@pytest.mark.parametrize("text", GREETINGS_ONLY, ids=[t or "empty" for t in GREETINGS_ONLY])
def test_greeting_only(text: str) -> None:
    assert matching.is_greeting_only(text)


@pytest.mark.parametrize("text", NOT_GREETINGS_ONLY)
def test_not_only_a_greeting(text: str) -> None:
    assert not matching.is_greeting_only(text)


@pytest.mark.parametrize(
    "text",
    [
        "529.982.247-25",
        "52998224725",
        "529 982 247 25",
        " 529.982.247-25 ",
        "11.222.333/0001-81",
        "11222333000181",
        "12.ABC.345/01DE-35",
        "123.456.789-00",  # looks like one; the check digits are checked later
    ],
)
def test_looks_like_document(text: str) -> None:
    assert matching.looks_like_document(text)


@pytest.mark.parametrize(
    "text", ["oi", "", "123", "5299822472", "529982247251", "boleto", "abcdefghijk", "2 via"]
)
def test_does_not_look_like_document(text: str) -> None:
    assert not matching.looks_like_document(text)


@pytest.mark.parametrize(
    ("text", "document"),
    [
        ("529.982.247-25", "529.982.247-25"),
        ("meu cpf é 529.982.247-25", "529.982.247-25"),
        ("CPF: 52998224725 obrigada", "52998224725"),
        ("o cnpj é 11.222.333/0001-81", "11.222.333/0001-81"),
        ("não sei", "não sei"),
    ],
)
def test_document_in_a_sentence(text: str, document: str) -> None:
    assert matching.document_in(text) == document


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Sem net!!", "sem internet"),
        ("SEGUNDA VIA", "segunda via"),
        ("2ª via", "segunda via"),
        ("2a via", "segunda via"),
        ("2via", "segunda via"),
        ("Não tá funcionando", "nao esta funcionando"),
        ("lentaaaa", "lenta"),
        ("3️⃣", "3"),
        ("vc pode me ajudar?", "voce pode me ajudar"),
        ("o wi fi caiu", "o internet caiu"),
        ("  muitos   espaços  ", "muitos espacos"),
        ("atendimento humano", "atendente"),
        ("pfv", "por favor"),
        ("qro o boleto", "quero o boleto"),
        ("", ""),
    ],
)
def test_normalize(text: str, normal: str) -> None:
    assert matching.normalize(text) == normal


@pytest.mark.parametrize(
    ("text", "menu"),
    [
        ("menu", True),
        ("MENU", True),
        ("Menu!", True),
        ("menu principal", True),
        ("voltar ao menu", True),
        ("início", True),
        ("quero ver os planos do menu", False),
        ("oi", False),
    ],
)
def test_menu_request(text: str, menu: bool) -> None:
    assert matching.is_menu_request(text) is menu


@pytest.mark.parametrize(
    ("text", "thanks"),
    [
        ("obrigado", True),
        ("obrigada!!", True),
        ("obg", True),
        ("valeu", True),
        ("era só isso", True),
        ("boleto", False),
        ("oi", False),
    ],
)
def test_thanks(text: str, thanks: bool) -> None:
    assert matching.is_thanks(text) is thanks
