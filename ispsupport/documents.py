"""Keeping encrypted CPF/CNPJ columns usable after a key change: recompute
their lookup hash (keyed with SECRET_KEY) and re-encrypt them with the newest
Fernet key, in locked batches. Used by each app's ``rehash_*`` command."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models, transaction

from ispsupport.crypto import DecryptionError, decrypt, rotate
from ispsupport.identity import document_hash


@dataclass
class RehashReport:
    total: int = 0
    checked: int = 0
    rehashed: int = 0
    reencrypted: int = 0
    unreadable: list[int] = field(default_factory=list)


def rehash_documents(
    model: type[models.Model],
    *,
    purpose: str,
    commit: bool,
    batch_size: int = 1000,
    progress: Callable[[RehashReport], None] | None = None,
) -> RehashReport:
    """Walk ``model``'s rows with a document (``document_encrypted`` /
    ``document_hash``); write only with ``commit``."""
    newest = Fernet(settings.FERNET_KEYS[0])
    rows = model._default_manager.exclude(document_encrypted="")
    report = RehashReport(total=rows.count())
    last_pk = 0
    while True:
        with transaction.atomic():
            batch_qs = rows.filter(pk__gt=last_pk).order_by("pk")
            if commit:
                # Locked, so a row edited meanwhile is not written back stale.
                batch_qs = batch_qs.select_for_update()
            batch = list(batch_qs.only("pk", "document_encrypted", "document_hash")[:batch_size])
            if not batch:
                break
            last_pk = batch[-1].pk
            changed = []
            for row in batch:
                report.checked += 1
                try:
                    document = decrypt(row.document_encrypted)  # type: ignore[attr-defined]
                except DecryptionError:
                    report.unreadable.append(row.pk)
                    continue
                dirty = False
                digest = document_hash(document, purpose=purpose)
                if row.document_hash != digest:  # type: ignore[attr-defined]
                    row.document_hash = digest  # type: ignore[attr-defined]
                    report.rehashed += 1
                    dirty = True
                if not _readable_with(newest, row.document_encrypted):  # type: ignore[attr-defined]
                    row.document_encrypted = rotate(row.document_encrypted)  # type: ignore[attr-defined]
                    report.reencrypted += 1
                    dirty = True
                if dirty:
                    changed.append(row)
            if commit and changed:
                model._default_manager.bulk_update(changed, ["document_hash", "document_encrypted"])
        if progress is not None:
            progress(report)
    return report


def _readable_with(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def run_rehash_command(
    command: Any, model: type[models.Model], *, purpose: str, label: str, options: dict[str, Any]
) -> RehashReport:
    """The ``rehash_*`` commands' common body: progress lines, a summary, and
    the ids no key opens on stderr. ``label`` names the rows ("contacts")."""
    started = time.monotonic()
    commit: bool = options["commit"]

    def progress(report: RehashReport) -> None:
        command.stdout.write(
            f"{label.capitalize()}: {report.checked}/{report.total} checked, {report.rehashed} "
            f"hashes to recompute, {report.reencrypted} to re-encrypt"
        )

    report = rehash_documents(
        model,
        purpose=purpose,
        commit=commit,
        batch_size=max(1, options["batch_size"]),
        progress=progress,
    )
    verb = "changed" if commit else "would change"
    summary = (
        f"{report.total} {label} with a CPF/CNPJ in {time.monotonic() - started:.1f} s: "
        f"{report.rehashed} lookup hashes {verb}, {report.reencrypted} documents {verb} to "
        f"the newest key, {len(report.unreadable)} unreadable."
    )
    if not commit:
        summary += " Dry run: nothing written; add --commit to apply."
    command.stdout.write(command.style.SUCCESS(summary))
    if report.unreadable:
        shown = ", ".join(map(str, report.unreadable[:20])) + (
            " ..." if len(report.unreadable) > 20 else ""
        )
        command.stderr.write(
            f"No key in FERNET_KEYS opens the document of {label} {shown}: put the old key "
            "back in FERNET_KEYS (after the new one) and run again."
        )
    return report
