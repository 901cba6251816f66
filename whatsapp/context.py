"""Template context the WhatsApp app adds to every page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest


def simulator(request: HttpRequest) -> dict[str, Any]:
    """``simulator_available``: may this user open the customer simulator now?

    A callable, so templates that never ask (Django admin, the API pages) cost
    nothing, and only for staff: nobody else may open it, so nobody else pays
    the look-up of the sandbox numbers.
    """
    # Imported lazily: context processors load with the settings.
    from whatsapp.simulator import simulator_available

    answer: list[bool] = []

    def available() -> bool:
        if not answer:
            user = getattr(request, "user", None)
            staff = bool(user is not None and user.is_authenticated and user.is_staff)
            answer.append(staff and simulator_available())
        return answer[0]

    lazy: Callable[[], bool] = available
    return {"simulator_available": lazy}
