"""Articles as operators keep them: Markdown files with YAML front matter in one folder.

A file's slug is its name without `.md`; translations share a stem and end in `-en` or
`-zh`. The front matter names the title, the language, the platforms (the intake's names)
and the SDK versions (a PEP 440 specifier) it is for, its tags and whether it is a draft.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from gateway.commands import ARTICLE_SLUG
from gateway.errors import ConfigError
from gateway.setting_values import LANGUAGES

STATUSES = ("draft", "published")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
SLUG = ARTICLE_SLUG
LANGUAGE_ENDING = re.compile(r"-(en|zh)$")
# The words of a summary line, when the front matter gives none.
SUMMARY_CHARACTERS = 200


@dataclass(frozen=True, slots=True)
class Article:
    """One article file, read."""

    slug: str
    title: str
    lang: str
    status: str
    platforms: tuple[str, ...]
    sdk_versions: str
    tags: tuple[str, ...]
    summary: str
    body: str
    digest: str

    @property
    def stem(self) -> str:
        return stem_of(self.slug)

    @property
    def published(self) -> bool:
        return self.status == "published"


def read_article(path: Path) -> Article:
    """The article in `path`; a `ConfigError` naming the file and what is wrong with it."""
    raw = path.read_bytes()
    slug = path.name.removesuffix(".md")
    if not SLUG.fullmatch(slug):
        raise ConfigError(
            f"{path.name}: a slug is at most 200 lowercase letters, digits, '.', '_', '-'"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text") from None
    found = FRONT_MATTER.match(text)
    if not found:
        raise ConfigError(f"{path.name}: no front matter (a '---' block with the title)")
    try:
        meta = yaml.safe_load(found.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: front matter is not YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path.name}: front matter must be a mapping of names to values")
    body = text[found.end() :].strip()
    return article_from(slug, meta, body, hashlib.sha256(raw).hexdigest(), path.name)


def article_from(slug: str, meta: dict[str, Any], body: str, digest: str, name: str) -> Article:
    title = str(meta.get("title") or "").strip()
    if not title:
        raise ConfigError(f"{name}: front matter has no title")
    lang = str(meta.get("lang") or language_of_slug(slug) or "").strip().lower()
    if lang not in LANGUAGES:
        raise ConfigError(f"{name}: lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    if language_of_slug(slug) not in (None, lang):
        raise ConfigError(f"{name}: the name ends in -{language_of_slug(slug)}, lang is {lang}")
    status = str(meta.get("status") or "published").strip().lower()
    if status not in STATUSES:
        raise ConfigError(f"{name}: status must be draft or published, not {status!r}")
    versions = str(meta.get("sdk_versions") or "").strip()
    if versions:
        try:
            SpecifierSet(versions)
        except InvalidSpecifier:
            raise ConfigError(
                f"{name}: sdk_versions {versions!r} is not a version specifier "
                "(such as '>=4.0,<4.2')"
            ) from None
    summary = str(meta.get("summary") or "").strip() or first_paragraph(body)
    return Article(
        slug,
        title,
        lang,
        status,
        names(meta.get("platforms")),
        versions,
        names(meta.get("tags")),
        summary,
        body,
        digest,
    )


def names(value: Any) -> tuple[str, ...]:
    """A list, or one comma-separated string, of names."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def stem_of(slug: str) -> str:
    """What translations of an article share: its slug without `-en` / `-zh`."""
    return LANGUAGE_ENDING.sub("", slug)


def language_of_slug(slug: str) -> str | None:
    found = LANGUAGE_ENDING.search(slug)
    return found.group(1) if found else None


def first_paragraph(body: str) -> str:
    """The first paragraph of prose, as one line: the summary a suggestion shows."""
    for block in re.split(r"\n\s*\n", body):
        line = " ".join(block.split())
        if line and not line.startswith(("#", "```", "|", "-", "*", ">")):
            return line if len(line) <= SUMMARY_CHARACTERS else cut(line)
    return ""


def cut(line: str) -> str:
    shortened = line[:SUMMARY_CHARACTERS].rsplit(" ", 1)[0]
    return f"{shortened}…"


def article_files(folder: Path) -> list[Path]:
    """The articles in `folder`, by name; a missing folder is a `ConfigError`."""
    if not folder.is_dir():
        raise ConfigError(f"GATEWAY_KB_DIR: {folder} is not a folder")
    return sorted(p for p in folder.glob("*.md") if p.is_file() and not p.name.startswith("."))


def lowered(names: tuple[str, ...]) -> set[str]:
    return {name.lower() for name in names}


def applies_to(
    article_platforms: tuple[str, ...], versions: str, platform: str | None, sdk_version: str | None
) -> bool:
    """Whether an article is for the customer's platform and SDK version, as far as the
    mail says them: an article for every platform or version fits any."""
    if platform and article_platforms and platform.lower() not in lowered(article_platforms):
        return False
    if sdk_version and versions:
        try:
            return Version(sdk_version) in version_range(versions)
        except InvalidVersion:
            return True
    return True


@functools.lru_cache(maxsize=1024)
def version_range(versions: str) -> SpecifierSet:
    """An article's `sdk_versions`, read once for all the searches that check it."""
    return SpecifierSet(versions)
