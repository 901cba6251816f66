"""Every environment variable the code reads is documented where operators look."""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT

READ = re.compile(r'(?:env_[a-z]+\(|os\.environ\.get\(|os\.getenv\()\s*"([A-Z][A-Z0-9_]+)"')
SKIP = {"tests", ".venv", "bench", "var", "migrations"}


def _variables_read() -> list[str]:
    names: set[str] = set()
    for path in ROOT.glob("*/**/*.py"):
        if SKIP & set(path.relative_to(ROOT).parts):
            continue
        names.update(READ.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


def test_the_code_reads_environment_variables() -> None:
    assert {"SECRET_KEY", "DATABASE_URL", "DEMO_PASSWORD"} <= set(_variables_read())


@pytest.mark.parametrize("name", _variables_read())
def test_variable_is_in_the_readme_and_env_example(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert f"`{name}`" in readme, f"README.md's configuration table lacks {name}"
    assert re.search(rf"^#?\s*{name}=", example, re.MULTILINE), f".env.example lacks {name}="
