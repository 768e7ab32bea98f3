"""`gateway kb`: index the article folder, search it as a new ticket would be, list the
articles with how they are used."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import reading
from gateway.errors import EX_DATAERR, ConfigError
from gateway.kb_watch import index_now
from gateway.knowledge import KnowledgeBase, Question, search
from gateway.knowledge.usage import article_usage
from gateway.lookup import open_existing
from gateway.settings import Settings
from storage.models import KbArticle


def run_kb(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.knowledge.enabled:
        raise ConfigError("GATEWAY_KB_DIR is not set: name the folder of Markdown articles")
    gateway = open_existing(settings, renders_mail=False)
    knowledge = gateway.executor.pipeline.rules.knowledge
    if args.action == "index":
        run = index_now(gateway, knowledge)
        if run is None:
            print("another gateway is indexing the knowledge base now; it will pick this up")
            return 0
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


def print_search(session: Session, knowledge: KnowledgeBase, args: argparse.Namespace) -> int:
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
                "suggested": knowledge.would_suggest(f),
            }
            for f in found
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no published article matches")
    for f in found:
        mark = "*" if knowledge.would_suggest(f) else " "
        print(f"{mark} {f.score:.3f}  {f.slug}  {f.title}")
        print(
            f"         bm25 {f.bm25:.2f}; names: {', '.join(f.shared) or '(none of its key words)'}"
        )
    print(f"(* would be suggested: score at least GATEWAY_KB_MIN_SCORE = {threshold:g})")
    return 0


def print_list(session: Session, as_json: bool) -> int:
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
            "tags": row.tags.split(",") if row.tags else [],
            "outdated": row.outdated or None,
            "outdated_at": row.outdated_at.isoformat() if row.outdated_at else None,
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
