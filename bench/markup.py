"""WhatsApp-formatting benchmark: what rendering costs per message.

Not a test: it prints figures. See bench/README.md ("Message formatting").

    .venv/bin/python bench/markup.py [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What a thread holds: the bot's menu, a customer's message with a link, an
# agent's reply; then the longest text WhatsApp allows, and hostile ones.
CASES: dict[str, str] = {
    "bot menu": (
        "Olá! Sou o assistente da *Fibra Net*.\n1️⃣ *Sem internet*\n2️⃣ _Segunda via_ do "
        "boleto\n3️⃣ Falar com um atendente\nResponda com o número da opção."
    ),
    "customer with link": "minha fatura https://fibra.net/segunda_via?c=8841 veio errada",
    "agent reply": "Maria, já abri a visita técnica: ~amanhã~ *hoje* às 14h. Protocolo ```8841```.",
    "4096 plain characters": ("Minha internet caiu de novo. " * 150)[:4096],
    "4096 with formatting": ("*negrito* _itálico_ ~riscado~ texto comum " * 100)[:4096],
    "hostile: 1400 unclosed markers": "*a " * 1400,
    "hostile: 700 nested levels": "*_~" * 700 + "x" + "~_*" * 700,
    "hostile: 4096 underscores": "_" * 4096,
}


def measure(render: Callable[[str], object], text: str, runs: int) -> tuple[float, float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        render(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="Renders per case.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from conversations.markup import chat_markup, chat_plain

    print(f"{'case':<32} {'chars':>6} {'markup p50':>11} {'p99':>8} {'plain p50':>10}")
    for name, text in CASES.items():
        p50, p99 = measure(chat_markup, text, args.runs)
        plain, _ = measure(chat_plain, text, args.runs)
        print(f"{name:<32} {len(text):>6} {p50:>8.3f} ms {p99:>5.2f} ms {plain:>7.3f} ms")


if __name__ == "__main__":
    main()
