"""Trigram indexes for the inbox search (`q`) on PostgreSQL.

Django's icontains becomes ``UPPER(col) LIKE UPPER('%term%')``; a GIN trigram
index on ``UPPER(col)`` serves it instead of a scan of every message (100k
conversations hold about half a million). Other databases get nothing.
The pg_trgm extension needs the right to create extensions: without it the
migration logs why it skipped, and search still works, only slower.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

INDEXES = {
    "msg_text_trgm": ("conversations_message", "text"),
    "contact_name_trgm": ("conversations_contact", "name"),
    "contact_profile_name_trgm": ("conversations_contact", "profile_name"),
}


def create(apps: object, schema_editor: object) -> None:
    connection = schema_editor.connection  # type: ignore[attr-defined]
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        logger.warning("Skipping the search indexes: cannot create pg_trgm (%s)", exc)
        return
    with connection.cursor() as cursor:
        for name, (table, column) in INDEXES.items():
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                f"USING gin (UPPER({column}) gin_trgm_ops)"
            )


def drop(apps: object, schema_editor: object) -> None:
    connection = schema_editor.connection  # type: ignore[attr-defined]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0002_message_reactions")]

    operations = [migrations.RunPython(create, drop)]
