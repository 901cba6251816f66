"""Durations as operators type them on the command line: ``30m``, ``48h``,
``365d``, ``1h30m``, ``2w``.

Commands use :func:`duration` as an argparse ``type=``, so a typo stops the
command before it touches anything, with one line saying what is accepted.
A bare number is refused on purpose: ``--older-than 365`` could mean days
or minutes, and guessing wrong on a purge deletes a year of data.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")
# Far beyond any retention an ISP keeps, far below timedelta's own limit.
MAX_DURATION = timedelta(days=100 * 365)

HINT = "use a number and a unit, e.g. 30m, 48h, 365d or 1h30m (units: w, d, h, m, s)"


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` → ``timedelta(hours=1, minutes=30)``; ``ValueError`` with a
    readable message for anything else (no unit, unknown unit, zero)."""
    raw = (text or "").strip().lower().replace(" ", "")
    if not raw:
        raise ValueError(f"empty duration: {HINT}")
    if not _WHOLE.fullmatch(raw):
        raise ValueError(f"invalid duration {text!r}: {HINT}")
    total = timedelta()
    for number, unit in _PART.findall(raw):
        if len(number) > 9:
            raise ValueError(f"duration {text!r} is too long")
        total += int(number) * UNITS[unit]
    if total <= timedelta():
        raise ValueError(f"duration {text!r} must be more than zero")
    if total > MAX_DURATION:
        raise ValueError(f"duration {text!r} is too long (at most 100 years)")
    return total


def duration(text: str) -> timedelta:
    """argparse ``type=``: the parsed duration, or argparse's own error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_duration(value: timedelta, *, smallest: str = "s") -> str:
    """The inverse, for messages: ``timedelta(hours=36)`` → ``"1d12h"``; with
    ``smallest="m"`` the seconds are dropped (``"2d2h"`` rather than ``"2d2h0m7s"``)."""
    units = ["d", "h", "m", "s"]
    units = units[: units.index(smallest) + 1]
    seconds = int(value.total_seconds())
    parts: list[str] = []
    for unit in units:
        size = int(UNITS[unit].total_seconds())
        count, seconds = divmod(seconds, size)
        if count > 0:
            parts.append(f"{count}{unit}")
    return "".join(parts) or f"0{smallest}"
