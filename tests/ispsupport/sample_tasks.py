"""Tasks for the tests, declared the way the apps declare theirs.

The worker imports a task by its module path, so these must live at module level.
"""

from __future__ import annotations

from ispsupport.tasks import background_task, current_request_id

# What the tasks ran in this process, in order; tests clear it first.
RAN: list[str] = []


@background_task()
def echo(value: str) -> str:
    RAN.append(value)
    return value


@background_task()
def report_request_id() -> str | None:
    request_id = current_request_id()
    RAN.append(f"request_id={request_id}")
    return request_id


@background_task()
def fail(reason: str) -> None:
    raise ValueError(reason)
