"""The words search sees in a text: the same reading for articles and for customers' mail.

Latin words are lowercased and stemmed (Snowball's English), so "crashes" finds "crashed".
Version strings and error codes stay whole (`4.0.6`, `notallowederror`, `-1004`), and a
negative code is also read without its sign, as customers often write it. Chinese has no
spaces: each run of Chinese characters becomes its overlapping character pairs (bigrams),
so a two-character term (黑屏, 回声, 卡顿) is one token wherever it stands, with no
dictionary to load or keep up to date. Each concept of the synonym table found in a text
adds its concept token, which is what lets a Chinese question find an English article and
the other way round.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick
import snowballstemmer

# The shipped table; a `synonyms.txt` in the knowledge base's folder replaces it.
SHIPPED_SYNONYMS = Path(__file__).with_name("synonyms.txt")

CHINESE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A run of Chinese, a negative code, or a Latin word (dotted or joined by '_' into one).
TOKEN = re.compile(
    rf"([{CHINESE}]+)"
    r"|((?<![\w.])-\d{2,12}(?!\d))"
    r"|([a-z0-9]+(?:[._][a-z0-9]+)*)"
)
VERSION_PREFIX = re.compile(r"v(?=\d)")
# Longer runs of letters and digits are no words (a key, a hash, an encoded blob), and the
# index keeps terms of at most 200 characters.
MAX_WORD_CHARACTERS = 64
# Words that say nothing about a problem: left out of queries and of the index alike.
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my myself no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself hi hello dear thanks thank
    please regards best team support help issue problem question get got use using used
    we're i'm it's don't doesn't can't cannot""".split()  # noqa: SIM905
)
CHINESE_STOPWORDS = frozenset(
    """你好 您好 谢谢 感谢 请问 我们 你们 他们 一个 这个 那个 什么 怎么 如何 为什么 问题 出现
    现在 已经 还是 但是 因为 所以 可以 没有 是不 不是 的时 时候 我的 一下 麻烦 帮忙 看看 一直
    非常 使用 用户 情况 然后 就是 这样 需要 希望 咨询""".split()  # noqa: SIM905
)
STEMMER = snowballstemmer.stemmer("english")
# What a synonym table's concept token starts with: no word of a text does (no '_' leads).
CONCEPT_PREFIX = "syn_"


def stem(word: str) -> str:
    if not word.isalpha() or len(word) <= 3:
        return word
    stemmed: str = STEMMER.stemWord(word)
    return stemmed


@dataclass(frozen=True, slots=True)
class Synonyms:
    """The synonym table: every variant of a concept, in any language, adds its token.

    Variants are found in one pass (Aho-Corasick) over the text with spaces and hyphens
    made single spaces; a Latin variant counts only as whole words, and where variants
    overlap the leftmost, then longest, wins and uses up the text it covers.
    """

    automaton: Any
    concept_of: dict[str, str]
    # A concept's first variant: how `gateway kb search` shows it.
    label_of: dict[str, str]
    # The table's SHA-256: articles indexed with another table are indexed again.
    digest: str = ""

    def concepts(self, lowered: str) -> Iterator[str]:
        if not self.concept_of:
            return
        text = SPACING.sub(" ", lowered)
        found = []
        for end, variant in self.automaton.iter(text):
            start = end - len(variant) + 1
            if whole_words(text, start, end + 1, variant):
                found.append((start, -len(variant), variant))
        taken_to = -1
        for start, negative_length, variant in sorted(found):
            if start > taken_to:
                taken_to = start - negative_length - 1
                yield self.concept_of[variant]


SPACING = re.compile(r"[\s-]+")
LATIN_EDGE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def whole_words(text: str, start: int, end: int, variant: str) -> bool:
    """Whether a Latin variant's ends are not inside a longer word; Chinese ends anywhere."""
    if variant[0] in LATIN_EDGE and start > 0 and text[start - 1] in LATIN_EDGE:
        return False
    return not (variant[-1] in LATIN_EDGE and end < len(text) and text[end] in LATIN_EDGE)


def variant_key(text: str) -> str:
    return SPACING.sub(" ", text.lower()).strip()


def load_synonyms(path: Path) -> Synonyms:
    """A table of one concept per line, variants separated by ` | `; `#` starts a comment."""
    concept_of: dict[str, str] = {}
    label_of: dict[str, str] = {}
    raw = path.read_bytes()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        variants = [variant_key(v) for v in line.split("#", 1)[0].split("|") if v.strip()]
        if len(variants) < 2:
            continue
        concept = (
            CONCEPT_PREFIX + re.sub(rf"[^a-z0-9{CHINESE}]+", "_", variants[0])[:MAX_WORD_CHARACTERS]
        )
        if concept in label_of:
            concept = f"{concept}_{number}"
        label_of[concept] = variants[0]
        for variant in variants:
            concept_of.setdefault(variant, concept)
    automaton = ahocorasick.Automaton()
    for variant in concept_of:
        automaton.add_word(variant, variant)
    if concept_of:
        automaton.make_automaton()
    return Synonyms(automaton, concept_of, label_of, hashlib.sha256(raw).hexdigest())


def synonyms_for(kb_dir: Path | None) -> Synonyms:
    """The folder's own table if it has one, else the shipped one."""
    own = kb_dir / "synonyms.txt" if kb_dir else None
    return cached_synonyms(own if own and own.is_file() else SHIPPED_SYNONYMS)


@functools.lru_cache(maxsize=8)
def cached_synonyms_at(path: Path, mtime_ns: int) -> Synonyms:
    return load_synonyms(path)


def cached_synonyms(path: Path) -> Synonyms:
    return cached_synonyms_at(path, path.stat().st_mtime_ns)


def tokens(text: str, synonyms: Synonyms) -> list[str]:
    """Every token of `text`, in order, then the concepts it names."""
    lowered = text.lower()
    found = plain_tokens(lowered)
    found.extend(synonyms.concepts(lowered))
    return found


def plain_tokens(lowered: str) -> list[str]:
    """The tokens of a lowercased text, in order, without the concepts it names."""
    found: list[str] = []
    for chinese, code, word in TOKEN.findall(lowered):
        if word:
            found += word_tokens(word)
        elif chinese:
            found += bigrams(chinese)
        else:
            found += (code, code[1:])
    return found


@functools.lru_cache(maxsize=65536)
def word_tokens(word: str) -> tuple[str, ...]:
    """A Latin word's tokens: none for a stopword or an overlong run, else its stem, and
    each of its parts' when '_' joins them. Mail repeats its words, so each is read once."""
    if "v" in word:
        word = VERSION_PREFIX.sub("", word, count=1)
    if word in STOPWORDS or len(word) > MAX_WORD_CHARACTERS:
        return ()
    if "_" not in word:
        return (stem(word),)
    return (stem(word), *(stem(part) for part in word.split("_") if part))


def bigrams(run: str) -> Iterable[str]:
    if len(run) == 1:
        return [run]
    pairs = (run[i : i + 2] for i in range(len(run) - 1))
    return [pair for pair in pairs if pair not in CHINESE_STOPWORDS]


def query_terms(text: str, synonyms: Synonyms) -> list[str]:
    """The distinct tokens of a question, in the order they first appear."""
    return list(dict.fromkeys(tokens(text, synonyms)))


def is_concept(token: str) -> bool:
    """Whether the token is a synonym table's concept rather than a word of the text."""
    return token.startswith(CONCEPT_PREFIX)
