"""The web service's pages: `templates/web/<page>.<lang>.html.j2`, editable by operators, and
the few static files every page links (`gateway/web/static`).

Every value is escaped (autoescape on every template): nothing a customer wrote can become
markup. Times are written in the zone the page is read in as far as the server knows it
(the customer's offset from their mail, the team's zone for engineers) inside `<time>`
elements, which `local-time.js` rewrites in the browser's own zone when it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from gateway.rendering import filesize

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FALLBACK_LANGUAGE = "en"


class Pages:
    """The page templates in one folder."""

    def __init__(self, templates_dir: Path) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(templates_dir),
            undefined=StrictUndefined,
            autoescape=True,
        )
        self.environment.filters["filesize"] = filesize

    def render(self, page: str, language: str, context: dict[str, Any]) -> str:
        """The page in `language`, else in English."""
        try:
            template = self.environment.get_template(f"web/{page}.{language}.html.j2")
        except TemplateNotFound:
            template = self.environment.get_template(f"web/{page}.{FALLBACK_LANGUAGE}.html.j2")
        return template.render(context)


def static_file(name: str) -> tuple[bytes, str] | None:
    """A static file's bytes and type; None for any name that is not one of them."""
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or not path.is_file():
        return None
    return path.read_bytes(), kind


def zone_of_offset(minutes: int | None, fallback: tzinfo) -> tzinfo:
    """The zone of a UTC offset in minutes (a customer's, from their mail), else `fallback`."""
    if minutes is None:
        return fallback
    return timezone(timedelta(minutes=minutes))


def moment(at: datetime | None, zone: tzinfo) -> dict[str, str]:
    """What a `<time>` element shows: the instant, and its wall time in `zone` with the
    zone's offset."""
    if at is None:
        return {"iso": "", "shown": ""}
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    label = "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}"
    return {"iso": at.isoformat(), "shown": f"{local:%Y-%m-%d %H:%M} {label}"}
