"""What the gateway tells engineers about their commands, in English and Chinese.

A command's result or refusal is written where it is decided (the workflow, the command
reader), but read in the language each engineer is configured for: so it is made in both,
as a `Phrase`, and the receipt's template picks one. A `Phrase` reads as its English words
wherever a plain string is wanted (the trail, the CLI, the log).
"""

from __future__ import annotations

from typing import NamedTuple

# The status names engineers read in Chinese.
STATUS_ZH = {
    "new": "新建",
    "open": "处理中",
    "waiting": "等待客户",
    "resolved": "已解决",
    "closed": "已关闭",
}


class Phrase(NamedTuple):
    """One thing said, in English and in Chinese."""

    en: str
    zh: str

    def __str__(self) -> str:
        return self.en

    def said_in(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


def status_zh(status: str) -> str:
    return STATUS_ZH.get(status, status)
