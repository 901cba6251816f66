"""Reading what a customer wrote: menu numbers, tapped options, yes/no, and
the intent behind free text ("segunda via do boleto", "sem net", "net caiu").

Everything is folded first (case, accents, punctuation, common abbreviations),
then matched as whole words; words of five letters or more also match with one
typo or so ("bolato", "cancelameto"). No model is involved here: Gemini is only
asked when these rules find nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from subscribers.text import fold

# Abbreviations and spellings customers use, replaced before matching (whole words).
_ABBREVIATIONS = {
    "vc": "voce",
    "vcs": "voces",
    "q": "que",
    "pq": "porque",
    "tb": "tambem",
    "tbm": "tambem",
    "pf": "por favor",
    "pfv": "por favor",
    "pfvr": "por favor",
    "obg": "obrigado",
    "obgd": "obrigado",
    "obgda": "obrigada",
    "vlw": "valeu",
    "blz": "beleza",
    "msg": "mensagem",
    "net": "internet",
    "wifi": "internet",
    "wi fi": "internet",
    "2a": "segunda",
    "2via": "segunda via",
    "2avia": "segunda via",
    "2ª": "segunda",
    "2": "2",
    "seg": "segunda",
    "boletos": "boleto",
    "faturas": "fatura",
    "atendende": "atendente",
    "atendimento humano": "atendente",
    "nao ta": "nao esta",
    "ta": "esta",
    "tá": "esta",
    "to": "estou",
    "n": "nao",
    "kero": "quero",
    "qro": "quero",
    "pra": "para",
    "s": "sim",
}

# Intent -> phrases (already folded). The longest phrase found wins, so
# "quero cancelar o boleto" is about the invoice only if nothing longer matches.
INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "invoice": (
        "minha conta",
        "financeiro",
        "segunda via",
        "2 via",
        "boleto",
        "fatura",
        "pix",
        "codigo de barras",
        "linha digitavel",
        "conta de internet",
        "pagar a conta",
        "pagar",
        "pagamento",
        "mensalidade",
        "vencimento",
        "conta atrasada",
        "conta esta atrasada",
        "conta vencida",
        "conta esta vencida",
    ),
    "trust_unlock": (
        "desbloqueio",
        "desbloqueio de confianca",
        "desbloquear",
        "liberar",
        "liberar internet",
        "liberar a internet",
        "liberar meu acesso",
        "falta de pagamento",
        "liberacao",
        "confianca",
        "bloqueada",
        "bloqueado",
        "bloquearam",
        "cortaram",
        "cortada",
        "religar",
        "religamento",
        "suspensa",
        "suspenso",
    ),
    "no_internet": (
        "piscando vermelho",
        "luz piscando",
        "nao consigo acessar",
        "nao consigo navegar",
        "nao carrega nada",
        "sem internet",
        "internet caiu",
        "caiu a internet",
        "internet parou",
        "parou de funcionar",
        "nao funciona",
        "nao esta funcionando",
        "nao conecta",
        "sem conexao",
        "sem sinal",
        "sem acesso",
        "fora do ar",
        "luz vermelha",
        "los vermelho",
        "caiu",
        "nao pega",
        "nao tenho internet",
        "nada de internet",
        "acabou a internet",
        "internet sumiu",
        "internet parada",
        "internet esta parada",
        "internet off",
        "internet esta off",
        "internet nao voltou",
        "luz los",
    ),
    "slow_internet": (
        "internet esta ruim",
        "internet esta muito ruim",
        "internet muito ruim",
        "lenta",
        "lento",
        "lentidao",
        "devagar",
        "oscilando",
        "oscilacao",
        "caindo",
        "travando",
        "velocidade baixa",
        "baixa velocidade",
        "ping alto",
        "internet ruim",
        "internet pessima",
        "internet esta pessima",
        "internet esta ruim",
        "internet horrivel",
        "internet esta horrivel",
        "instavel",
        "instabilidade",
        "sinal fraco",
        "fraco",
        "fraca",
        "lerda",
        "lerdo",
        "lag",
        "lagando",
        "velocidade contratada",
        "demora para carregar",
        "demorando para carregar",
    ),
    "technical_visit": (
        "visita",
        "visita tecnica",
        "tecnico",
        "agendar",
        "agendamento",
        "reparo",
        "instalacao",
        "trocar roteador",
        "trocar o roteador",
        "trocar meu roteador",
        "roteador queimou",
        "roteador estragou",
        "roteador quebrou",
        "roteador com defeito",
        "roteador de lugar",
        "fio rompido",
        "cabo rompido",
        "arrebentou",
        "arrebentado",
        "mudanca de endereco",
        "mudar de endereco",
    ),
    "plans": (
        "comercial",
        "vendas",
        "plano",
        "planos",
        "mudar de plano",
        "trocar de plano",
        "upgrade",
        "aumentar velocidade",
        "aumentar a velocidade",
        "aumentar minha velocidade",
        "mais velocidade",
        "contratar",
        "assinar",
        "valores",
        "preco",
        "precos",
        "mega",
        "giga",
        "quanto custa",
        "promocao",
        "cobertura",
    ),
    "cancellation": (
        "cancelar",
        "cancelamento",
        "encerrar contrato",
        "encerrar o contrato",
        "rescindir",
        "rescisao",
        "encerrar meu contrato",
        "encerrar minha internet",
        "encerrar a internet",
        "cancelar contrato",
        "cancelar o contrato",
        # Not "nao quero mais" alone: "não quero mais nada" ends a chat, and
        # "não quero mais esperar" asks for a person.
        "nao quero mais a internet",
        "nao quero mais internet",
        "nao quero mais o servico",
        "nao quero mais o plano",
    ),
    "agent": (
        "atendente",
        "humano",
        "falar com alguem",
        "chama alguem",
        "chamar alguem",
        "falar com uma pessoa",
        "pessoa de verdade",
        "operador",
        "operadora",
        "suporte humano",
        "me liga",
        "ligar para mim",
        "falar com gente",
        "gente de verdade",
        "falar com o suporte",
        "falar com suporte",
        "nao quero falar com robo",
        "nao quero robo",
    ),
}

MENU_WORDS = ("menu", "inicio", "voltar", "opcoes", "voltar ao menu", "menu principal")
GREETINGS = (
    "oi",
    "ola",
    "oie",
    "bom dia",
    "boa tarde",
    "boa noite",
    "eai",
    "e ai",
    "hello",
    "alo",
    "tudo bem",
    "opa",
    "oii",
)
YES = ("sim", "voltou", "funcionou", "deu certo", "resolveu", "isso", "ok", "claro",
       "pode ser", "ja voltou", "normalizou", "esta funcionando", "agora foi", "quero",
       "aham", "uhum", "positivo", "com certeza", "esta normal")  # fmt: skip
NO = ("nao", "continua", "ainda nao", "nao funcionou", "nao voltou", "nao deu certo", "nada",
      "nao resolveu", "mesma coisa", "continua sem", "negativo")  # fmt: skip
# "Hold on, I'm trying it": not an answer yet ("ok, vou testar" is no yes).
WAIT = ("vou testar", "vou tentar", "vou fazer", "vou ver", "vou reiniciar", "ja faco",
        "pera", "perai", "espera", "espera ai", "aguarda", "aguarde", "um momento",
        "um minuto", "so um minuto", "testando", "reiniciando", "fazendo")  # fmt: skip
THANKS = ("obrigado", "obrigada", "valeu", "so isso", "tchau", "era so isso", "nada mais",
          "agradeco", "beleza", "show")  # fmt: skip

_PUNCTUATION = re.compile(r"[^\w\s]")
_NUMBER_ANSWER = re.compile(r"^(?:quero\s+)?(?:[ao]\s+)?(?:(?:opcao|numero|item)\s*)*(\d{1,2})$")
_KEYCAP = re.compile("([0-9])\ufe0f?\u20e3")
_REPEATS = re.compile(r"([a-z])\1{2,}")
# Emojis that answer a yes/no question on their own.
_YES_EMOJIS = ("👍", "✅", "👌")
# Real words one slip away from a phrase's word: they mean themselves, never
# a typo ("vou pegar" is not "pagar", "à vista" not "visita", "perco" not "preço").
_NOT_TYPOS = frozenset(
    ("pegar", "pagou", "vista", "perco", "preso", "prego", "pleno", "plana", "lendo", "lente",
     "lenda", "contrato", "contratos", "contato", "contatos", "atendimento", "tocar", "futura")
)  # fmt: skip
# When both are read, the first wins: "cancelar meu plano de 300 mega" names
# the plan that is being cancelled.
_OUTRANKS = {"cancellation": ("plans",)}


def normalize(text: str) -> str:
    """Folded, punctuation-free, abbreviations expanded: "Sem net!!" -> "sem internet"."""
    text = _KEYCAP.sub(r"\1", text or "")
    text = text.replace("ª", "a").replace("º", "o")
    # "lentaaa", "siiim": a letter typed three times or more counts once.
    text = _REPEATS.sub(r"\1", fold(text))
    words = _PUNCTUATION.sub(" ", text).split()
    out: list[str] = []
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else None
        if pair and pair in _ABBREVIATIONS:
            out.append(_ABBREVIATIONS[pair])
            i += 2
            continue
        out.append(_ABBREVIATIONS.get(words[i], words[i]))
        i += 1
    return " ".join(" ".join(out).split())


def _distance(a: str, b: str, limit: int) -> int:
    """Edits (insert, delete, replace, swap of neighbours) from a to b; stops past ``limit``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _fuzzy_equal(word: str, wanted: str) -> bool:
    """Equal, or one slip in a word of 5-7 letters, two in a longer one; the
    first letter must be right (people rarely miss it, and it keeps "preciso"
    from reading as "rescisao")."""
    if word == wanted:
        return True
    if word in _NOT_TYPOS or len(wanted) < 5 or word[:1] != wanted[:1]:
        return False
    limit = 1 if len(wanted) < 8 else 2
    if abs(len(word) - len(wanted)) > limit:
        return False
    return _distance(word, wanted, limit) <= limit


def _contains(words: list[str], phrase: str) -> bool:
    """Whole-word match of ``phrase`` in ``words``, tolerating typos in long words."""
    wanted = phrase.split()
    n = len(wanted)
    for i in range(len(words) - n + 1):
        if all(_fuzzy_equal(words[i + k], wanted[k]) for k in range(n)):
            return True
    return False


def _matches_any(text: str, phrases: tuple[str, ...]) -> bool:
    words = normalize(text).split()
    return any(_contains(words, p) for p in phrases)


@dataclass(frozen=True)
class Match:
    intent: str
    score: int  # characters of the phrases that matched


def intent_of(text: str) -> Match | None:
    """The intent whose phrases cover the most of ``text``, or None."""
    words = normalize(text).split()
    if not words:
        return None
    best: Match | None = None
    scores: dict[str, int] = {}
    for intent, phrases in INTENT_PHRASES.items():
        score = sum(len(p) for p in phrases if _contains(words, p))
        scores[intent] = score
        if score and (best is None or score > best.score):
            best = Match(intent, score)
    for winner, losers in _OUTRANKS.items():
        if best is not None and best.intent in losers and scores[winner]:
            best = Match(winner, scores[winner])
    return best


def number_answer(text: str) -> int | None:
    """ "2", "opção 2", "2️⃣", "2." -> 2."""
    cleaned = normalize(text)
    match = _NUMBER_ANSWER.match(cleaned)
    return int(match.group(1)) if match else None


def is_menu_request(text: str) -> bool:
    cleaned = normalize(text)
    return cleaned in MENU_WORDS


def is_greeting_only(text: str) -> bool:
    """ "oi", "bom dia!", "olá, tudo bem?": nothing asked yet."""
    words = normalize(text).split()
    if not words:
        return True
    rest = " ".join(words)
    for greeting in sorted(GREETINGS, key=len, reverse=True):
        rest = re.sub(rf"\b{greeting}\b", " ", rest)
    leftovers = [w for w in rest.split() if w not in ("tudo", "bem", "td", "bom", "boa", "pessoal")]
    return not leftovers


def is_yes(text: str) -> bool:
    if (text or "").strip() in _YES_EMOJIS:
        return True
    cleaned = normalize(text)
    if _matches_any(cleaned, NO) or _matches_any(cleaned, WAIT):
        return False
    return _matches_any(cleaned, YES)


def is_no(text: str) -> bool:
    return _matches_any(normalize(text), NO)


def is_wait(text: str) -> bool:
    return _matches_any(normalize(text), WAIT)


def is_thanks(text: str) -> bool:
    return _matches_any(normalize(text), THANKS)


def looks_like_document(text: str) -> bool:
    """Eleven or fourteen characters of digits (a CNPJ may have letters since 2026)."""
    bare = re.sub(r"[\s./-]", "", text or "")
    return (
        len(bare) in (11, 14)
        and bool(re.fullmatch(r"[0-9A-Za-z]+", bare))
        and any(ch.isdigit() for ch in bare)
    )


_DOCUMENT_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])(?:\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}"
    r"|[0-9A-Za-z]{2}\.?[0-9A-Za-z]{3}\.?[0-9A-Za-z]{3}/?[0-9A-Za-z]{4}-?\d{2})(?![0-9A-Za-z])"
)


def document_in(text: str) -> str:
    """The CPF/CNPJ inside a sentence ("meu cpf é 529.982.247-25" -> "529.982.247-25"),
    or the text as it is when none stands out."""
    text = (text or "").strip()
    if looks_like_document(text):
        return text
    candidates = [m.group(0) for m in _DOCUMENT_IN_TEXT.finditer(text)]
    found = [c for c in candidates if looks_like_document(c) and any(ch.isdigit() for ch in c)]
    return found[0] if len(found) == 1 else text
