"""subscribers knows nothing of conversations, channels or the bot: those use
it (through the directory), never the other way round."""

from __future__ import annotations

import ast

from tests.support import ROOT

FORBIDDEN = ("conversations", "whatsapp", "chatbot")


def imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_subscribers_imports_no_conversations_channel_or_bot() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path.read_text(encoding="utf-8"))
            if name.split(".")[0] in FORBIDDEN
        )
        for path in (ROOT / "subscribers").rglob("*.py")
    }

    assert {path: names for path, names in offenders.items() if names} == {}
