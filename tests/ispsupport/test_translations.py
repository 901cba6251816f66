"""The pt-BR catalogues (server and console JavaScript) are complete and their
committed .mo files match the .po files."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.utils import translation

from tests.support import ROOT

PO = ROOT / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po"
JS_PO = ROOT / "locale" / "pt_BR" / "LC_MESSAGES" / "djangojs.po"


@pytest.mark.parametrize("po", [PO, JS_PO], ids=["django", "djangojs"])
def test_every_message_has_a_portuguese_translation(po: Path) -> None:
    catalogue = polib.pofile(str(po))

    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []


def test_the_javascript_catalogue_is_compiled() -> None:
    compiled = polib.mofile(str(JS_PO.with_suffix(".mo")))
    source = polib.pofile(str(JS_PO))

    assert {e.msgid: e.msgstr for e in compiled} == {
        e.msgid: e.msgstr for e in source if e.translated()
    }


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
