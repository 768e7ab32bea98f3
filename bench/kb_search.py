"""The knowledge base at scale: indexing 10,000 articles, and one search's time.

Articles are made from the labelled set's (`tests/kb_set/articles`): each takes one
article's title and front matter and mixes its paragraphs with two others', so the words
and their spread are those of real articles. The folder is indexed into a fresh database
(SQLite, or with `--postgres` a private PostgreSQL cluster that keeps fsync), timed, then
every question of the set is searched as a new ticket would be (with the platform and SDK
version the intake reads from it), timed one by one.

    .venv/bin/python bench/kb_search.py --articles 10000
    .venv/bin/python bench/kb_search.py --articles 10000 --postgres
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from gateway.knowledge import Question, index_folder, search, synonyms_for  # noqa: E402
from storage.session import make_engine, make_session_factory  # noqa: E402
from tests.schema import current_schema  # noqa: E402
from tests.test_knowledge_search import KB_SET, as_question  # noqa: E402


def make_articles(folder: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    sources = [p.read_text() for p in sorted((KB_SET / "articles").glob("*.md"))]
    split = [re.match(r"(---\n.*?\n---\n)(.*)", s, re.DOTALL) for s in sources]
    parts = [(m.group(1), m.group(2).split("\n\n")) for m in split if m]
    for number in range(count):
        front, paragraphs = rng.choice(parts)
        mixed = list(paragraphs)
        for _ in range(2):
            mixed += rng.sample(rng.choice(parts)[1], k=2)
        rng.shuffle(mixed)
        front = front.replace("status: draft", "status: published")
        front = re.sub(r"title: (.*)", rf"title: \1 {number}", front, count=1)
        lang = "zh" if "lang: zh" in front else "en"
        (folder / f"article-{number:05d}-{lang}.md").write_text(front + "\n\n".join(mixed))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="searches per question")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as temporary:
        folder = Path(temporary) / "kb"
        folder.mkdir()
        made = time.perf_counter()
        make_articles(folder, args.articles, args.seed)
        print(f"made {args.articles} articles in {time.perf_counter() - made:.1f} s")
        server = None
        if args.postgres:
            from tests.postgres import PostgresServer

            server = PostgresServer(durable=True).start()
            url = server.new_database()
        else:
            url = f"sqlite:///{Path(temporary) / 'kb.sqlite3'}"
        try:
            run(url, folder, args.rounds)
        finally:
            if server is not None:
                server.stop()
    return 0


def run(url: str, folder: Path, rounds: int) -> None:
    current_schema(url)
    sessions = make_session_factory(make_engine(url))
    synonyms = synonyms_for(None)
    started = time.perf_counter()
    with sessions() as session, session.begin():
        indexed = index_folder(session, folder, synonyms, datetime.now(UTC))
    took = time.perf_counter() - started
    print(f"{url.split(':')[0]}: indexed {len(indexed.added)} articles in {took:.1f} s")
    questions = json.loads((KB_SET / "questions.json").read_text())
    times = []
    with sessions() as session:
        search(session, Question("warm up"), synonyms)
        for _ in range(rounds):
            for entry in questions:
                asked = as_question(entry)
                began = time.perf_counter()
                search(session, asked, synonyms)
                times.append((time.perf_counter() - began) * 1000)
    times.sort()
    print(
        f"search over {len(times)} questions: mean {statistics.mean(times):.1f} ms, "
        f"median {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95)]:.1f} ms, "
        f"max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
