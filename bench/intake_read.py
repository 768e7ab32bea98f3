"""How long the intake takes to read a first mail: `read_first_mail` over generated typical
mails, with and without an attached SDK log.

Each mail is 1–20 KB of English or Chinese text: a report with an SDK version, a device,
a system, App ID, channel, user ID, a time and numbered steps, then paragraphs of story,
a forwarded part or a pasted stack. A third as many again carry a 200 KB SDK log. Prints
the mean, median and p99 microseconds a mail for the mails without an attachment by size
(1–3 KB is the typical mail) and for those with a log, and the targets: a typical mail
under 1 ms, one with a 200 KB log under 20 ms.

    .venv/bin/python bench/intake_read.py --mails 300 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.intake import File, MailText, read_first_mail  # noqa: E402

TARGET_PLAIN_US = 1_000
TARGET_LOG_US = 20_000
LOG_BYTES = 200 * 1024
SENT_AT = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))

HEADS_EN = [
    "Hi team,\n\nOur Android app crashes every time a user joins a channel on a Xiaomi 13 "
    "(Android 14). We use the RTC SDK v4.0.6; our app is v2.3.1. It works fine on iOS.\n\n"
    "App ID: a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f\nChannel: live_room_88\nuid 100234\n\n"
    "It happened yesterday at 8:30pm (GMT+8).\n\nSteps to reproduce:\n1. Open the app\n"
    "2. Join channel live_room_88\n3. Switch the camera\n",
    "Hello,\n\nRemote video goes black after about 30 seconds on iPhone 14 Pro, iOS 17.2, "
    "SDK version 4.1.0. How do we fix this? Started this morning at 9:15.\n",
    "Hi, is it possible to share the screen with audio in the Web SDK 4.20.0 on Chrome 120? "
    "We could not find it in the docs.\n",
]
HEADS_ZH = [
    "你好，\n\n我们用的是你们的SDK，SDK版本：4.0.7，App版本2.3.1。机型是小米13，安卓13。iOS正常，"
    "安卓不行。昨晚八点半左右出现的。\n复现步骤：\n1、打开App进入直播间\n2、切换前后摄像头\n3、闪退\n"
    "频道名：room_123  用户ID：8888\n",
    "您好，观众端拉流有回声，华为 Mate 60 Pro，鸿蒙4.0，SDK 3.8.2。今天上午十点左右开始的。\n",
    "请问是否支持在小程序里做美颜？我们的 uni-app 项目用的是 4.2.0 版本的SDK。\n",
]
STORY_EN = (
    "We have tried reinstalling the app, switching between Wi-Fi and 4G, and clearing the "
    "cache, but nothing changes. Our users in Jakarta and Manila report the same thing, and "
    "the dashboard shows nothing unusual for that period. "
)
STORY_ZH = (
    "我们已经尝试了重装应用、切换网络、清除缓存，问题依旧。"
    "雅加达和马尼拉的用户也有同样的反馈，后台看不到异常。"
)
STACK = (
    "    at io.agora.rtc2.internal.RtcEngineImpl.joinChannel(RtcEngineImpl.java:812)\n"
    "    at com.example.live.RoomActivity.onCreate(RoomActivity.java:120)\n"
)
FORWARD = (
    "\n---------- Forwarded message ---------\nFrom: Customer <c@example.com>\n"
    "Date: Mon, Nov 30, 2026 at 9:10 PM\nSubject: black screen\nTo: support\n\n"
)


def log_file(rng: random.Random) -> File:
    lines = ["2026-11-30 20:30:00.000 [I] sdk version: 4.0.6 build 1234"]
    lines.append("2026-11-30 20:30:00.010 [I] device: Xiaomi 2211133C, os: Android 14")
    size = sum(len(line) + 1 for line in lines)
    while size < LOG_BYTES:
        stamp = f"20:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}"
        line = (
            f"2026-11-30 {stamp} [{rng.choice('IWED')}] [rtc] onNetworkQuality "
            f"uid={rng.randrange(10**6)} tx={rng.randrange(6)} rx={rng.randrange(6)} "
            f"rtt={rng.randrange(400)}ms"
        )
        lines.append(line)
        size += len(line) + 1
    data = "\n".join(lines).encode()
    return File("agorasdk.log", "text/plain", data, hashlib.sha256(data).hexdigest())


def mail(rng: random.Random, with_log: bool) -> MailText:
    chinese = rng.random() < 0.5
    text = rng.choice(HEADS_ZH if chinese else HEADS_EN)
    target = rng.randrange(1024, 20 * 1024)
    extra = rng.choice(["story", "forward", "stack"])
    while len(text.encode()) < target:
        if extra == "stack":
            text += STACK
        else:
            text += FORWARD if extra == "forward" and "Forwarded" not in text else ""
            text += (STORY_ZH if chinese else STORY_EN) + "\n"
    files = (log_file(rng),) if with_log else ()
    return MailText("App crashes on Xiaomi 13", text, "", files, SENT_AT)


def timings(mails: list[MailText]) -> list[float]:
    spent = []
    for one in mails:
        start = time.perf_counter()
        read_first_mail(one)
        spent.append((time.perf_counter() - start) * 1e6)
    return spent


def report(name: str, spent: list[float], target: float | None = None) -> None:
    ordered = sorted(spent)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    mean = statistics.fmean(spent)
    verdict = "" if target is None else f"  (target mean < {target:.0f} µs: "
    verdict += "" if target is None else ("met)" if mean < target else "MISSED)")
    print(
        f"{name:>24}: {len(spent):4} mails  mean {mean:7.0f} µs  median "
        f"{statistics.median(spent):7.0f} µs  p99 {p99:7.0f} µs{verdict}"
    )


def by_size(mails: list[MailText], spent: list[float]) -> dict[str, list[float]]:
    sizes: dict[str, list[float]] = {"1–3 KB": [], "3–8 KB": [], "8–20 KB": []}
    for one, micros in zip(mails, spent, strict=True):
        size = len(one.text.encode())
        sizes["1–3 KB" if size < 3072 else "3–8 KB" if size < 8192 else "8–20 KB"].append(micros)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    plain = [mail(rng, with_log=False) for _ in range(options.mails)]
    logged = [mail(rng, with_log=True) for _ in range(max(1, options.mails // 3))]
    sizes = [len(one.text.encode()) for one in plain]
    print(f"{len(plain)} mails of {min(sizes)}–{max(sizes)} bytes, {len(logged)} with a log")
    timings(plain[:10])
    started = datetime.now(UTC)
    for round_ in range(1, options.repeat + 1):
        print(f"round {round_}")
        spent = timings(plain)
        for size, micros in by_size(plain, spent).items():
            report(
                f"without attachment {size}", micros, TARGET_PLAIN_US if size == "1–3 KB" else None
            )
        report("without attachment, all", spent)
        report("with a 200 KB log", timings(logged), TARGET_LOG_US)
    print(f"took {(datetime.now(UTC) - started).total_seconds():.1f} s")


if __name__ == "__main__":
    main()
