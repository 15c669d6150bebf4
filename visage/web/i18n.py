"""Languages of the console: English (the source strings), French and Arabic (right to
left). Catalogues are Babel ``.po`` files under ``locales/<lang>/``, one per screen so that
screens can be translated independently; they are read once, at start.

Extract new strings with ``pybabel extract -F visage/web/babel.cfg -o messages.pot visage/web``
and merge them into the screen's ``.po`` file (see ``docs/console.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT = "en"
SUPPORTED = ("en", "fr", "ar")
RTL = frozenset({"ar"})
NAMES = {"en": "English", "fr": "Français", "ar": "العربية"}


@dataclass(frozen=True)
class Translator:
    """``gettext`` for one language: the translated string, else the English source."""

    lang: str
    messages: Mapping[str, str] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "rtl" if self.lang in RTL else "ltr"

    def __call__(self, message: str, /, **values: object) -> str:
        text = self.messages.get(message) or message
        return text % values if values else text


@cache
def translator(lang: str) -> Translator:
    if lang not in SUPPORTED or lang == DEFAULT:
        return Translator(DEFAULT)
    messages: dict[str, str] = {}
    for po in sorted((LOCALES_DIR / lang).glob("*.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for message in catalog:
            source, translated = message.id, message.string
            if not (isinstance(source, str) and isinstance(translated, str)):
                continue
            if source and translated and not message.fuzzy:
                messages[source] = translated
    return Translator(lang, messages)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The language to answer in: the one chosen with the switch (a cookie), else the best
    match of the browser's ``Accept-Language``, else English."""
    if chosen in SUPPORTED:
        return chosen
    wanted: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        if not tag:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        wanted.append((q, tag.replace("_", "-")))
    preferred = [tag for q, tag in sorted(wanted, key=lambda w: -w[0]) if q > 0]
    try:
        best = Locale.negotiate(preferred, list(SUPPORTED), sep="-")
    except (UnknownLocaleError, ValueError):
        best = None
    return best.language if best is not None else DEFAULT
