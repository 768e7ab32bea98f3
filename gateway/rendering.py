"""The mail templates: `templates/<recipient>/<event>.<lang>.<txt|html>.j2`, editable by
operators, rendered with Jinja2.

The text template sets `subject`. A template missing in a language falls back to English,
and the mail says which language it is in; `StrictUndefined` makes a template that names a
value it was not given fail loudly rather than send a blank. File sizes read as people say
them (`{{ size | filesize }}`: "6 MB", "120 KB"). `require_templates` checks, before any
mail is rendered, that a folder holds every English template the gateway ships: a missing
one would otherwise surface only when the first mail that needs it is rendered, and
quarantine that message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from gateway.composing import single_line
from gateway.errors import ConfigError

FALLBACK_LANGUAGE = "en"
SETTING = "GATEWAY_TEMPLATES_DIR"


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    # The language it is written in (Content-Language).
    language: str = FALLBACK_LANGUAGE


class Templates:
    """The templates in one folder."""

    def __init__(self, folder: Path) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(folder),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            keep_trailing_newline=True,
        )
        self.environment.filters["filesize"] = filesize

    def render(
        self, recipient_kind: str, event: str, language: str, context: dict[str, Any]
    ) -> RenderedMail:
        """Text and HTML parts of one mail, in `language` or else English."""
        lang = language if self.has(recipient_kind, event, language) else FALLBACK_LANGUAGE
        text_template = self.environment.get_template(f"{recipient_kind}/{event}.{lang}.txt.j2")
        html_template = self.environment.get_template(f"{recipient_kind}/{event}.{lang}.html.j2")
        module = text_template.make_module(context)
        return RenderedMail(
            subject=single_line(str(getattr(module, "subject", ""))),
            text=str(module),
            html=html_template.render(context),
            language=lang,
        )

    def has(self, recipient_kind: str, event: str, language: str) -> bool:
        try:
            self.environment.get_template(f"{recipient_kind}/{event}.{language}.txt.j2")
        except TemplateNotFound:
            return False
        return True


def require_templates(folder: Path, shipped: Path) -> None:
    """`ConfigError` naming the setting unless `folder` has every English template that
    `shipped` (the templates of this checkout) has."""
    if not folder.is_dir():
        raise ConfigError(f"{SETTING}: {folder} is not a directory")
    missing = [name for name in english_templates(shipped) if not (folder / name).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ConfigError(f"{SETTING}: {folder} lacks {', '.join(missing[:3])}{more}")


def english_templates(folder: Path) -> list[str]:
    """The English templates under `folder`, as paths relative to it."""
    pattern = f"*/*.{FALLBACK_LANGUAGE}.*.j2"
    return sorted(str(path.relative_to(folder)) for path in folder.glob(pattern))


def filesize(size: int) -> str:
    """A file's size as people say it: "512 B", "120 KB", "6 MB", "1.5 GB"."""
    amount, unit = float(size), "B"
    for larger in ("KB", "MB", "GB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, larger
    shown = f"{amount:.1f}".removesuffix(".0") if amount < 10 and unit != "B" else f"{amount:.0f}"
    return f"{shown} {unit}"
