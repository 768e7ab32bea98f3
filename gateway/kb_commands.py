"""`gateway kb`: index the article folder, search it as a new ticket would be, list the
articles with how they are used."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy import select

from gateway.database import reading, transaction
from gateway.errors import ConfigError
from gateway.knowledge import KnowledgeBase, Question, search
from gateway.knowledge.usage import article_usage
from gateway.lookup import open_existing
from gateway.settings import Settings
from storage.models import KbArticle

# sysexits: the data (an article file) is wrong.
EX_DATAERR = 65


def knowledge_of(settings: Settings) -> KnowledgeBase:
    if not settings.knowledge.enabled:
        raise ConfigError("GATEWAY_KB_DIR is not set: name the folder of Markdown articles")
    return KnowledgeBase(settings.knowledge, settings.web.public_url)


def run_kb(settings: Settings, args: argparse.Namespace) -> int:
    knowledge = knowledge_of(settings)
    gateway = open_existing(settings, renders_mail=False)
    if args.action == "index":
        with transaction(gateway.sessions) as session:
            run = knowledge.index(session, gateway.clock.now())
        for name, reason in sorted(run.errors.items()):
            print(f"gateway: kb: {name}: {reason}", file=sys.stderr)
        print(
            f"indexed {knowledge.folder}: {len(run.added)} added, {len(run.changed)} changed, "
            f"{len(run.removed)} removed, {run.unchanged} unchanged, {len(run.errors)} bad"
        )
        return EX_DATAERR if run.errors else 0
    with reading(gateway.sessions) as session:
        if args.action == "search":
            return print_search(session, knowledge, args)
        return print_list(session, args.json)


def print_search(session: Any, knowledge: KnowledgeBase, args: argparse.Namespace) -> int:
    """The ranking for a question, best first, and why: the article's words it names."""
    if not args.query:
        raise ConfigError('kb search needs the question, as in: gateway kb search "黑屏"')
    question = Question(" ".join(args.query), args.lang, args.platform, args.sdk_version)
    found = search(session, question, knowledge.synonyms, limit=args.limit)
    threshold = knowledge.settings.min_score
    if args.json:
        rows = [
            {
                "slug": f.slug,
                "title": f.title,
                "lang": f.lang,
                "score": f.score,
                "bm25": round(f.bm25, 4),
                "why": list(f.shared),
                "suggested": f.score >= threshold and not f.outdated,
            }
            for f in found
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no published article matches")
    for f in found:
        mark = "*" if f.score >= threshold and not f.outdated else " "
        print(f"{mark} {f.score:.3f}  {f.slug}  {f.title}")
        print(
            f"         bm25 {f.bm25:.2f}; names: {', '.join(f.shared) or '(none of its key words)'}"
        )
    print(f"(* would be suggested: score at least GATEWAY_KB_MIN_SCORE = {threshold:g})")
    return 0


def print_list(session: Any, as_json: bool) -> int:
    usage = article_usage(session)
    rows = [
        {
            "slug": row.slug,
            "title": row.title,
            "lang": row.lang,
            "status": row.status,
            "suggested": usage.suggested[row.slug],
            "opened": usage.opened[row.slug],
            "solved": usage.solved[row.slug],
            "outdated": row.outdated or None,
        }
        for row in session.scalars(select(KbArticle).order_by(KbArticle.slug))
    ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        flag = f"  [outdated: {row['outdated']}]" if row["outdated"] else ""
        print(
            f"{row['slug']:<44} {row['lang']} {row['status']:<9} suggested {row['suggested']:>4}"
            f"  solved {row['solved']:>4}  {row['title']}{flag}"
        )
    if not rows:
        print("no articles indexed: run `gateway kb index`")
    return 0
