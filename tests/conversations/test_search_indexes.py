"""The inbox search is served by trigram indexes on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.postgres
@pytest.mark.django_db
def test_message_text_and_contact_names_have_trigram_indexes() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s", ["%_trgm"]
        )
        indexes = dict(cursor.fetchall())

    assert set(indexes) == {"msg_text_trgm", "contact_name_trgm", "contact_profile_name_trgm"}
    assert "gin (upper(text) gin_trgm_ops)" in indexes["msg_text_trgm"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_message_text_search_can_use_the_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM conversations_message WHERE UPPER(text::text) LIKE UPPER(%s)",
            ["%roteador%"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "msg_text_trgm" in plan
