"""What the core announces to apps that build on it (the bot), after the commit.

Receivers run after the transaction that caused them has committed, in the
process that made the change; they enqueue work rather than do it.
"""

from __future__ import annotations

from django.dispatch import Signal

# conversation_id: int, self_served: bool (the bot resolved it without a person)
conversation_resolved = Signal()
# conversation_id: int, score: int (1-5), message_id: int
conversation_rated = Signal()
# message_ids: list[int], conversation_ids: list[int] — an LGPD erasure
# anonymised these rows; a channel forgets what it keeps about them elsewhere
# (its cache), which the core cannot name.
contacts_erased = Signal()
