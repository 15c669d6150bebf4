"""Pages from Jinja2 templates, in the viewer's language, with the navigation its role may
use. Templates are autoescaped; they get ``_`` (gettext for the page's language), ``viewer``,
``nav``, ``csrf`` and ``lang``/``dir``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from visage import __version__
from visage.governance.access import UseCase
from visage.web import i18n
from visage.web.session import CSRF_FIELD, Viewer, language

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class NavItem:
    label: str  # English source; translated in the template
    path: str
    use_case: UseCase


NAV: tuple[NavItem, ...] = (
    NavItem("Overview", "/", UseCase.overview),
    NavItem("Subjects", "/subjects", UseCase.subjects),
    NavItem("Identify", "/identify", UseCase.recognise),
    NavItem("Reviews", "/reviews", UseCase.review),
    NavItem("Events", "/events", UseCase.events),
    NavItem("Cameras", "/cameras", UseCase.cameras),
    NavItem("Audit", "/audit", UseCase.audit),
    NavItem("Reports", "/reports", UseCase.audit),
    NavItem("Admin", "/admin", UseCase.users),
)
"""The console's sections, each shown only to the roles the policy lets use it."""


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


ENV = _environment()


def nav_for(viewer: Viewer | None) -> list[NavItem]:
    if viewer is None or viewer.must_change_password:
        return []
    return [item for item in NAV if viewer.may(item.use_case)]


def page(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered for ``viewer`` (None on the sign-in and error pages)."""
    lang = viewer.lang if viewer is not None else language(request)
    gettext = i18n.translator(lang)
    html = ENV.get_template(template).render(
        _=gettext,
        lang=lang,
        dir=gettext.direction,
        languages=i18n.NAMES,
        viewer=viewer,
        nav=nav_for(viewer),
        current=request.url.path,
        csrf=viewer.csrf if viewer is not None else "",
        csrf_field=CSRF_FIELD,
        version=__version__,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
