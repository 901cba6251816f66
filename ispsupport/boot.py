"""Start-up for every entry point (manage.py, ASGI, WSGI).

A wrong environment value must stop the process with one line that names the
variable; a traceback through the settings module would bury it.
"""

from __future__ import annotations

import os
import sys

import django


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    from ispsupport.env import ConfigError

    try:
        django.setup()
    except ConfigError as exc:
        sys.stderr.write(f"ispsupport: configuration error: {exc}\n")
        raise SystemExit(2) from None
