"""Languages: every sentence a person reads goes through one gettext catalog per language.

`Text` keeps a hint language-neutral from where it is made (diagnosis) to where it is shown;
`translator(lang)` renders it, and any output's own words (`tr("Target")`), in that language.
Codes (class, reason, phase, probe kinds, JSON keys) are never translated. How to add or
change a sentence: see the header of ``locale/ja/LC_MESSAGES/mailcanary.po``.
"""

from mailcanary.i18n.catalog import Translator, translator
from mailcanary.i18n.language import DEFAULT, LANGUAGES, from_environment, known, normalize
from mailcanary.i18n.text import N_, Text

__all__ = [
    "DEFAULT", "LANGUAGES", "N_", "Text", "Translator", "from_environment", "known",
    "normalize", "translator",
]
