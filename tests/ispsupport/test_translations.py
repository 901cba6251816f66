"""The pt-BR catalogue is complete and its committed .mo matches the .po."""

from __future__ import annotations

import polib
from django.utils import translation

from tests.support import ROOT

PO = ROOT / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_portuguese_translation() -> None:
    catalogue = polib.pofile(str(PO))

    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []


def test_the_compiled_catalogue_is_the_one_in_use() -> None:
    catalogue = polib.pofile(str(PO))

    with translation.override("pt-br"):
        for entry in catalogue:
            if entry.msgid_plural:
                assert (
                    translation.ngettext(entry.msgid, entry.msgid_plural, 1)
                    == (entry.msgstr_plural[0])
                )
            elif entry.msgctxt:
                assert translation.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr
            else:
                assert translation.gettext(entry.msgid) == entry.msgstr, entry.msgid
