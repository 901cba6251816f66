"""Re-encrypting every Fernet-encrypted column with the newest key of FERNET_KEYS,
so the older keys can be dropped (``manage.py rotate_encryption_keys``).

The columns are found, not listed: every model field named ``*_encrypted``
holds a Fernet token (the project's convention; tests hold every encrypted
field to it). ispsupport sits below the apps and imports none of them.

CPF/CNPJ columns (``document_encrypted`` beside a ``document_hash``) go
through ``ispsupport.documents.rehash_documents``, the walker their
``rehash_*`` commands use: re-encrypting there also repairs lookup hashes left
stale by a SECRET_KEY change. Other columns (WhatsApp access tokens and app
secrets) go through ``rotate_columns`` below.

Both walk the rows by primary key in batches, each batch its own transaction
with its rows locked, and skip values already readable with the newest key:
an interrupted run just continues when started again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q

from ispsupport.crypto import DecryptionError, rotate
from ispsupport.documents import RehashReport, rehash_documents

SUFFIX = "_encrypted"
DOCUMENT_FIELD = "document_encrypted"
DOCUMENT_HASH_FIELD = "document_hash"


@dataclass(frozen=True)
class EncryptedColumns:
    model: type[models.Model]
    fields: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.model._meta.label} ({', '.join(self.fields)})"

    @property
    def is_document(self) -> bool:
        names = {f.name for f in self.model._meta.get_fields()}
        return self.fields == (DOCUMENT_FIELD,) and DOCUMENT_HASH_FIELD in names

    @property
    def document_purpose(self) -> str:
        """The salt of this table's CPF/CNPJ lookup hash: ``<app>.<Model>.document``
        (``ispsupport.identity.document_hash``), unless the model names its own."""
        return getattr(self.model, "DOCUMENT_PURPOSE", f"{self.model._meta.label}.document")


def encrypted_columns() -> list[EncryptedColumns]:
    """Every model's ``*_encrypted`` fields; a CPF/CNPJ column stands alone, so
    it can go through the rehash walker."""
    found = []
    for model in apps.get_models():
        names = tuple(
            f.name
            for f in model._meta.concrete_fields
            if f.name.endswith(SUFFIX) and isinstance(f, models.CharField | models.TextField)
        )
        if not names:
            continue
        document = tuple(n for n in names if n == DOCUMENT_FIELD)
        others = tuple(n for n in names if n != DOCUMENT_FIELD)
        found += [EncryptedColumns(model, group) for group in (document, others) if group]
    return sorted(found, key=lambda c: c.label)


@dataclass
class ColumnReport:
    label: str
    total: int = 0  # stored values: one per non-empty field of each row
    checked: int = 0
    rotated: int = 0  # re-encrypted with the newest key (or would be, in a dry run)
    rehashed: int = 0  # CPF/CNPJ lookup hashes recomputed on the way
    unreadable: list[int] = field(default_factory=list)  # row ids no key opens

    @property
    def current(self) -> int:
        return self.checked - self.rotated - len(self.unreadable)


def on_newest_key(token: str, newest: Fernet | None = None) -> bool:
    try:
        (newest or Fernet(settings.FERNET_KEYS[0])).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate_columns(
    columns: EncryptedColumns,
    *,
    commit: bool,
    batch_size: int = 500,
    progress: Callable[[ColumnReport], None] | None = None,
) -> ColumnReport:
    """Re-encrypt ``columns`` with the newest key; write only with ``commit``.

    Rows are saved one by one (``update_fields``) so the models' save signals
    run: the WhatsApp numbers' cached ciphertexts are dropped, or a process
    would keep reading a value only the dropped key opens.
    """
    model, fields = columns.model, columns.fields
    with_value = Q()
    for name in fields:
        with_value |= ~Q(**{name: ""})
    rows = model._default_manager.filter(with_value)
    report = ColumnReport(label=columns.label)
    report.total = sum(rows.exclude(**{name: ""}).count() for name in fields)
    newest = Fernet(settings.FERNET_KEYS[0])
    last_pk = None
    while True:
        with transaction.atomic():
            batch_qs = rows.order_by("pk")
            if last_pk is not None:
                batch_qs = batch_qs.filter(pk__gt=last_pk)
            if commit:
                # Locked, so a value changed meanwhile is not written back stale.
                batch_qs = batch_qs.select_for_update()
            batch = list(batch_qs.only("pk", *fields)[:batch_size])
            if not batch:
                break
            last_pk = batch[-1].pk
            for row in batch:
                changed = []
                for name in fields:
                    token = getattr(row, name)
                    if not token:
                        continue
                    report.checked += 1
                    if on_newest_key(token, newest):
                        continue
                    try:
                        setattr(row, name, rotate(token))
                    except DecryptionError:
                        report.unreadable.append(row.pk)
                        continue
                    report.rotated += 1
                    changed.append(name)
                if commit and changed:
                    row.save(update_fields=changed)
        if progress is not None:
            progress(report)
    return report


def rotate_documents(
    columns: EncryptedColumns,
    *,
    commit: bool,
    batch_size: int = 500,
    progress: Callable[[ColumnReport], None] | None = None,
) -> ColumnReport:
    """A CPF/CNPJ column, through the documents' rehash walker."""
    report = ColumnReport(label=columns.label)

    def relay(inner: RehashReport) -> None:
        _copy(inner, report)
        if progress is not None:
            progress(report)

    _copy(
        rehash_documents(
            columns.model,
            purpose=columns.document_purpose,
            commit=commit,
            batch_size=batch_size,
            progress=relay,
        ),
        report,
    )
    return report


def _copy(inner: RehashReport, report: ColumnReport) -> None:
    report.total = inner.total
    report.checked = inner.checked
    report.rotated = inner.reencrypted
    report.rehashed = inner.rehashed
    report.unreadable = list(inner.unreadable)


def rotate_all(
    *,
    commit: bool,
    batch_size: int = 500,
    progress: Callable[[ColumnReport], None] | None = None,
) -> list[ColumnReport]:
    """Every encrypted column, re-encrypted with the newest key (``commit``) or
    counted (dry run)."""
    reports = []
    for columns in encrypted_columns():
        walker = rotate_documents if columns.is_document else rotate_columns
        report = walker(columns, commit=commit, batch_size=max(1, batch_size), progress=progress)
        if report.total == 0 and progress is not None:
            progress(report)  # an empty column still gets its line
        reports.append(report)
    return reports
