"""A task for the end-to-end server test: the worker that `make run` starts must run it."""

from pathlib import Path

from ispsupport.tasks import background_task


@background_task()
def touch_file(path: str) -> str:
    Path(path).write_text("done by the worker")
    return path
