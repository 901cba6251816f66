"""An ERP adapter's answers are cached for a minute (an ERP call can take
seconds); the built-in directory is read fresh; failures are not cached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from subscribers.builtin import DatabaseDirectory
from subscribers.directory import (
    CachedDirectory,
    DirectoryError,
    SubscriberInfo,
    UnlockResult,
    get_directory,
)


class SlowErp(DatabaseDirectory):
    """Counts the calls that would go to the ERP."""

    calls: list[str] = []
    failing = False

    def find_by_phone(self, phone: str) -> list[SubscriberInfo]:
        SlowErp.calls.append(f"phone:{phone}")
        if SlowErp.failing:
            raise DirectoryError("ERP down")
        return [SubscriberInfo(code="C-1", name="Maria Souza", phone=phone)]

    def request_trust_unlock(self, contract_code: str) -> UnlockResult:
        SlowErp.calls.append(f"unlock:{contract_code}")
        return UnlockResult("not_found")


@pytest.fixture(autouse=True)
def _erp(settings: Any) -> Iterator[None]:
    settings.SUBSCRIBER_DIRECTORY = f"{__name__}.SlowErp"
    SlowErp.calls, SlowErp.failing = [], False
    cache.clear()
    yield
    cache.clear()


def test_an_adapter_is_wrapped_and_its_answers_reused() -> None:
    directory = get_directory()
    assert isinstance(directory, CachedDirectory)

    first = directory.find_by_phone("+5511988887777")
    again = get_directory().find_by_phone("+5511988887777")

    assert first == again
    assert SlowErp.calls == ["phone:+5511988887777"]


def test_the_cache_keys_hold_no_phone() -> None:
    key = CachedDirectory(SlowErp())._key("phone", "+5511988887777")
    assert "988887777" not in key


def test_a_failure_is_not_cached() -> None:
    SlowErp.failing = True
    with pytest.raises(DirectoryError):
        get_directory().find_by_phone("+5511988887777")
    SlowErp.failing = False

    assert get_directory().find_by_phone("+5511988887777")[0].code == "C-1"
    assert len(SlowErp.calls) == 2


def test_a_trust_unlock_always_reaches_the_erp() -> None:
    get_directory().request_trust_unlock("K-1")
    get_directory().request_trust_unlock("K-1")
    assert SlowErp.calls == ["unlock:K-1", "unlock:K-1"]


def test_the_built_in_directory_is_not_wrapped(settings: Any) -> None:
    settings.SUBSCRIBER_DIRECTORY = "subscribers.builtin.DatabaseDirectory"
    assert isinstance(get_directory(), DatabaseDirectory)
