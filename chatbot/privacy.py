"""Who one person is across the apps, for the LGPD commands (access and erasure):
the identities their helpdesk contacts carry, to find their subscriber records.
"""

from __future__ import annotations

from collections.abc import Sequence

from conversations.models import Contact
from conversations.privacy import query_document, query_phone


def subscriber_identities(query: str, contacts: Sequence[Contact]) -> dict[str, list[str]]:
    """``subscribers.privacy.subscribers_of``'s arguments for the person the
    operator named with ``query`` and whose contacts were found by it.

    Raises ``ispsupport.crypto.DecryptionError`` when a contact's CPF/CNPJ
    cannot be read: their records would be missed silently otherwise.
    """
    return {
        "codes": [c.customer_code for c in contacts],
        "documents": [c.document for c in contacts] + [query_document(query) or ""],
        "phones": [c.phone or "" for c in contacts] + [query_phone(query) or ""],
    }
