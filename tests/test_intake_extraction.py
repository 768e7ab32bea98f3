"""The intake reads a customer's first mail and replies to our ask for the facts a report
needs: each fact in its positive forms and the traps that look like it, in English and
Chinese; attached logs by name and by content, within bounds whatever they hold; the
fill-in block's answers; the kind of report and its precedence.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.intake import (
    LABELS,
    UNKNOWN,
    Fact,
    File,
    Findings,
    Kind,
    MailText,
    Source,
    identifiers,
    kinds,
    mentions,
    read_first_mail,
    read_reply,
    steps,
)
from gateway.intake.unpacking import HEAD_BYTES, MAX_ARCHIVE_BYTES, TAIL_BYTES
from gateway.parsing.quoting import extract_reply

CHINA = timezone(timedelta(hours=8))
JAKARTA = timezone(timedelta(hours=7))
CHICAGO = timezone(timedelta(hours=-6))
LOS_ANGELES = timezone(timedelta(hours=-8))
# A Tuesday morning in Beijing.
SENT = datetime(2026, 12, 1, 10, 0, tzinfo=CHINA)


def attached(name: str, data: bytes, content_type: str = "application/octet-stream") -> File:
    return File(name, content_type, data, hashlib.sha256(data).hexdigest())


def first(
    text: str,
    subject: str = "",
    files: tuple[File, ...] = (),
    sent_at: datetime | None = SENT,
) -> Findings:
    return read_first_mail(MailText(subject, text, "", files, sent_at))


def reply(
    text: str, reply_text: str = "", files: tuple[File, ...] = (), sent_at: datetime | None = SENT
) -> Findings:
    # Asked for everything: every quoted line of the fill-in block may answer.
    subject = "Re: [Support #12] crash"
    return read_reply(MailText(subject, text, reply_text, files, sent_at, frozenset(Fact)))


def finding(findings: Findings, fact: Fact) -> tuple[str, Source]:
    found = next(f for f in findings.facts if f.fact is fact)
    return found.value, found.source


# -- SDK version ----------------------------------------------------------------------------

SDK_VERSIONS = [
    ("SDK version: 4.0.6", "4.0.6"),
    ("sdk_version=4.0.6", "4.0.6"),
    ("We are using the RTC SDK v4.0.6 on Android.", "4.0.6"),
    ("using v4.0.6 of your SDK", "4.0.6"),
    ("Our app v2.3.1 is built with SDK 4.0.6", "4.0.6"),
    ("App version 2.3.1, SDK version 4.0.6", "4.0.6"),
    ("we upgraded the SDK from 4.0.5 to 4.0.6 last week and since then it crashes", "4.0.6"),
    ("SDK v3.7.2.1", "3.7.2.1"),
    ("Tried the beta SDK 4.1.0-beta.2 too", "4.1.0"),
    ("dependencies: agora_rtc_engine: ^6.2.6, Flutter 3.16.5", "6.2.6"),
    ("implementation 'io.agora.rtc:full-sdk:4.3.0'", "4.3.0"),
    ("pod 'AgoraRtcEngine_iOS', '4.2.6'", "4.2.6"),
    ("SDK 4.2 on iOS 17", "4.2"),
    ("4.0.7 SDK, Android 14", "4.0.7"),
    ("SDK版本：4.0.7", "4.0.7"),
    ("我们用的是你们的SDK 4.0.7版本", "4.0.7"),
    ("App版本2.3.1，SDK版本号是4.0.7", "4.0.7"),
    ("版本号：4.0.7", "4.0.7"),
    ("我们升级到了4.0.7之后开始闪退", "4.0.7"),
    ("声网SDK 4.0.7", "4.0.7"),
    ("TRTC 11.5.0.15364 on Windows", "11.5.0.15364"),
    ("【SDK版本】：4.2.0", "4.2.0"),
    ("SDK iOS 4.2.2 / Web 4.20.0", "4.2.2"),
    ("RTC SDK for Android v4.0.6", "4.0.6"),
    ("Unity 2021.3.30f1, Agora Unity SDK v4.2.6", "4.2.6"),
    ("Game built with Unity 2022.3 LTS and the Unity SDK 4.1.2.", "4.1.2"),
    ("our desktop client ships your Electron SDK 4.3.0", "4.3.0"),
    ("Windows SDK v4.1.0 in a WPF app", "4.1.0"),
    ("For what it's worth we're on 4.0.9 of the Android SDK.", "4.0.9"),
    ("went from SDK 4.0.3 to 4.1.1 in March, black frames since", "4.1.1"),
    ("SDK 4.0.3 -> 4.1.1 and now it echoes", "4.1.1"),
    ("react_native_agora plugin 4.2.0 on RN 0.72", "4.2.0"),
    ("Flutter plugin 6.1.0 with Flutter 3.13.9", "6.1.0"),
    ("我们用的是你们 4.2.1 的 iOS SDK", "4.2.1"),
    ("集成的是 4.0.9 的SDK", "4.0.9"),
    ("Web SDK 从 4.19.0 升到了 4.20.1 之后就黑屏", "4.20.1"),
    ("两端用的都是 4.1.5。", "4.1.5"),
    ("SDK 版本：React Native 插件 4.2.3", "4.2.3"),
    ("语音插件版本：4.1.8", "4.1.8"),
]
NOT_SDK_VERSIONS = [
    "our app v2.3.1 crashes on start",
    "App版本2.3.1 闪退",
    "We use ffmpeg 6.0 and WebRTC M120 for recording",
    "Chrome 120.0.6099.109 on macOS 14.2",
    "iOS 17.2 and Android 14",
    "the server is at 192.168.1.10 and 10.0.0.5:8080",
    "it happened on 30.11.2026 in the evening",
    "We are on the latest SDK",
    "用的是最新版SDK",
    "SDK version: x.x.x",
    "SDK版本：4.0.x",
    "latency is about 1.5 s",
    "Flutter SDK 3.16.0",
    "Android SDK version 34.0.0 (flutter doctor)",
    "Xcode 15.1, Node 18.17.1",
    "Version 2.3.1 of our app crashes",
    "我们App用的是2.3.1版本",
    "our app is using 2.3.1",
    "Windows SDK 10.0.22621 installed with Visual Studio",
    "Electron 27.1.3 shell",
    "我们的App，版本 3.2.1，在安卓上闪退",
    "Our application, version 5.0.2, freezes on login",
    "3.2.1 of the Flutter SDK",
]


@pytest.mark.parametrize(("text", "version"), SDK_VERSIONS)
def test_sdk_version_is_read_where_it_is_tied_to_the_sdk(text: str, version: str) -> None:
    assert first(text).value(Fact.SDK_VERSION) == version


@pytest.mark.parametrize("text", NOT_SDK_VERSIONS)
def test_other_versions_and_placeholders_are_no_sdk_version(text: str) -> None:
    assert first(text).value(Fact.SDK_VERSION) is None


# -- platform -------------------------------------------------------------------------------

PLATFORMS = [
    ("Our Android app crashes when joining a channel.", "Android"),
    ("安卓端推流黑屏", "Android"),
    ("It works on iOS but fails on Android.", "Android"),
    ("iOS正常，安卓不行", "Android"),
    ("Android is fine, the problem is only on iOS", "iOS"),
    ("We build with Flutter; on Android 14 the remote video is black.", "Flutter"),
    ("React Native app, iOS 17: no audio after joining", "React Native"),
    ("our RN app freezes", "React Native"),
    ("Unity game on Android, the voice chat echoes", "Unity"),
    ("Electron desktop client on Windows 11", "Electron"),
    ("微信小程序里拉流卡顿", "Mini Program"),
    ("uni-app 打包的安卓应用闪退", "uni-app"),
    ("H5页面在微信里打不开摄像头", "Web"),
    ("Web SDK in Chrome on Android phones: no sound", "Web"),
    ("The remote user on iPhone 14 Pro sees a black screen", "iOS"),
    ("小米13上面闪退", "Android"),
    ("Only Safari shows the problem", "Web"),
    ("鸿蒙4.0上推流失败", "HarmonyOS"),
    ("Win11 PC client crashes at startup", "Windows"),
    ("MacBook Pro M2 screen sharing shows a black window", "macOS"),
    ("Ubuntu 22.04 server recording", "Linux"),
    ("iOS17.2 crash on join", "iOS"),
]


@pytest.mark.parametrize(("text", "platform"), PLATFORMS)
def test_platform_is_the_one_with_the_problem_framework_first(text: str, platform: str) -> None:
    assert first(text).value(Fact.PLATFORM) == platform


@pytest.mark.parametrize(
    "text",
    [
        "Hello, the call drops after ten minutes for some users.",
        "Please check the web console for my project, I cannot find the usage page.",
        "Sent from my iPhone",
    ],
)
def test_no_platform_where_none_is_named(text: str) -> None:
    assert first(text).value(Fact.PLATFORM) is None


# -- system version -------------------------------------------------------------------------

SYSTEMS = [
    ("Android 14", "Android 14"),
    ("安卓13", "Android 13"),
    ("Android version 6.0, old phone", "Android 6.0"),
    ("iOS17.2", "iOS 17.2"),
    ("iPhone OS 17.2", "iOS 17.2"),
    ("iPadOS 17.1 on an iPad Air", "iPadOS 17.1"),
    ("鸿蒙4.0", "HarmonyOS 4.0"),
    ("HarmonyOS 4.2", "HarmonyOS 4.2"),
    ("Win11", "Windows 11"),
    ("Windows 10 (10.0.19045)", "Windows 10"),
    ("macOS 14.2", "macOS 14.2"),
    ("macOS Sonoma 14.2", "macOS 14.2"),
    ("Ubuntu 22.04", "Ubuntu 22.04"),
    ("works on iOS 17 but fails on Android 14", "Android 14"),
    ("系统：安卓 14", "Android 14"),
    ("Platform: iOS\nOS version: 17.1.2", "iOS 17.1.2"),
    ("平台：安卓\n系统版本：14", "Android 14"),
    (
        "Build fingerprint: 'HUAWEI/NOH-AN00/HWNOH:12/102.0.0.182C00:user/release-keys'",
        "Android 12",
    ),
]
NOT_SYSTEMS = [
    "Android phones",
    "API 33",
    "Chrome 120 on Android",
    "iPhone 14 Pro",
    "Android SDK 4.0.6",
    "安卓手机都有这个问题",
    "Flutter app; building with Xcode 15.0.1 on macOS 13.5",
    "OS version: 17.1.2",
]


@pytest.mark.parametrize(("text", "system"), SYSTEMS)
def test_system_version_has_its_canonical_name_and_number(text: str, system: str) -> None:
    assert first(text).value(Fact.OS_VERSION) == system


@pytest.mark.parametrize("text", NOT_SYSTEMS)
def test_no_system_version_without_a_number(text: str) -> None:
    assert first(text).value(Fact.OS_VERSION) is None


# -- device ---------------------------------------------------------------------------------

DEVICES = [
    ("机型是小米13，安卓13", "小米13"),
    ("Device: Xiaomi 13", "Xiaomi 13"),
    ("华为 Mate 60 Pro 上闪退", "华为 Mate 60 Pro"),
    ("on an iPhone 14 Pro running iOS 17", "iPhone 14 Pro"),
    ("tested on a nexus 5", "nexus 5"),
    ("Samsung Galaxy S23 Ultra", "Samsung Galaxy S23 Ultra"),
    ("model: SM-S9180", "SM-S9180"),
    ("Pixel 7 works, Pixel 8 Pro crashes", "Pixel 8 Pro"),
    ("红米Note 12 Pro", "红米Note 12 Pro"),
    ("OPPO Reno 10 Pro+", "OPPO Reno 10 Pro+"),
    ("vivo X100 Pro", "vivo X100 Pro"),
    ("荣耀 Magic 5 Pro", "荣耀 Magic 5 Pro"),
    ("一加12", "一加12"),
    ("MacBook Pro M2", "MacBook Pro M2"),
    ("机型：ZTE Axon 40", "ZTE Axon 40"),
    ("iPhone 15 works fine, iPhone 12 mini crashes", "iPhone 12 mini"),
    ("it's Android 10 on a Nokia 7.2", "Nokia 7.2"),
    ("Host: iPad Pro 12.9 (iPadOS 17.1)", "iPad Pro 12.9"),
    ("  Device          ZTE Axon 40\n  OS              Android 13", "ZTE Axon 40"),
    ("【机型】：荣耀X50", "荣耀X50"),
    ("Xiaomi Redmi Note 12 Pro", "Xiaomi Redmi Note 12 Pro"),
    ("vivo iQOO 12 and vivo V27", "vivo iQOO 12"),
    ("Echo on our Lenovo ThinkPad E14 Gen 5 here", "Lenovo ThinkPad E14 Gen 5"),
    ("Dell Inspiron 5510, Windows 10, no audio", "Dell Inspiron 5510"),
    ("Machine: HP EliteBook 1040 G9", "HP EliteBook 1040 G9"),
    ("Happens on my Surface Pro 9 only", "Surface Pro 9"),
    ("华为 MateBook X Pro 上共享屏幕闪退", "华为 MateBook X Pro"),
    ("老师的电脑是联想拯救者R7000P", "联想拯救者R7000P"),
    ("We run the gateway on a Raspberry Pi 4 Model B", "Raspberry Pi 4 Model B"),
    ("Galaxy Tab A9+ drops the call", "Galaxy Tab A9+"),
    ("iPad mini (6th generation) freezes", "iPad mini (6th generation)"),
    ("the Mac Studio M2 Max client lags", "Mac Studio M2 Max"),
    ("机型：三星 SM-A5460", "三星 SM-A5460"),
    ("Blurry on iPad Air\nDevice: iPad Air 13-inch", "iPad Air 13-inch"),
    ("Crash on 小米14\n机型：Xiaomi 14 Ultra，安卓14", "Xiaomi 14 Ultra"),
    ("Phones: OnePlus 11, Redmi Note 13 (both fail after Wi-Fi switch)", "OnePlus 11"),
    ("Xiaomi 14 works fine, Pixel 8 fails", "Pixel 8"),
]
NOT_DEVICES = [
    "some phones",
    "Android devices",
    "各种安卓机型都有",
    "iPhone",
    "phone: +86 138 0013 8000",
    "p99 latency is 400 ms",
    "Device: Android 14",
    "Room 1203, Dell building",
    "Latitude 30.5 N",
    "I do yoga classes with a legion of fans",
    "precision 2 decimals",
]


@pytest.mark.parametrize(("text", "device"), DEVICES)
def test_device_is_written_as_the_customer_wrote_it(text: str, device: str) -> None:
    assert first(text).value(Fact.DEVICE) == device


@pytest.mark.parametrize("text", NOT_DEVICES)
def test_no_device_without_a_model(text: str) -> None:
    assert first(text).value(Fact.DEVICE) is None


# -- App ID, channel, user ID ---------------------------------------------------------------

LABELLED = [
    ("App ID: a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f", Fact.APP_ID, "a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f"),
    ("appid=1400123456", Fact.APP_ID, "1400123456"),
    (
        "我们的AppID是 7d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
        Fact.APP_ID,
        "7d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
    ),
    ("channel: live_room_88", Fact.CHANNEL, "live_room_88"),
    ("They joined channel test-123 at the same time", Fact.CHANNEL, "test-123"),
    ("频道名：room_123", Fact.CHANNEL, "room_123"),
    ("房间号 886612", Fact.CHANNEL, "886612"),
    ("channel name is demo", Fact.CHANNEL, "demo"),
    ("uid 100234", Fact.UID, "100234"),
    ("User ID: alice_01", Fact.UID, "alice_01"),
    (
        "  App ID          0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        Fact.APP_ID,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ),
    ("| Channel | class_room_7 |", Fact.CHANNEL, "class_room_7"),
    ("【频道名】：live_1024", Fact.CHANNEL, "live_1024"),
    ("用户ID：8888", Fact.UID, "8888"),
    ("頻道名稱：class_tw_88", Fact.CHANNEL, "class_tw_88"),
    ("直播間號：room_hk_3", Fact.CHANNEL, "room_hk_3"),
    ("主播帳號ID：70021", Fact.UID, "70021"),
    ("出问题的远端用户：guest_5512", Fact.UID, "guest_5512"),
    ("Our host's uid is always 42.", Fact.UID, "42"),
    ("uid 固定为 6060", Fact.UID, "6060"),
    ("The room was studio-b_2 that night", Fact.CHANNEL, "studio-b_2"),
]
NOT_LABELLED = [
    ("the channel is full", Fact.CHANNEL),
    ("left audio channel: 2", Fact.CHANNEL),
    ("App ID: your_app_id", Fact.APP_ID),
    ("AppID and token are both correct", Fact.APP_ID),
    ("user id will be assigned by the server", Fact.UID),
    ("uid: xxxx", Fact.UID),
    ("Channel name: N/A", Fact.CHANNEL),
    ("Acme Ltd, Room 1203, Building 5, Tech Park", Fact.CHANNEL),
    ("fun onAudioVolume(uid: Long, volume: Int)", Fact.UID),
    ("we join with uid 0 so the SDK assigns one", Fact.UID),
    ("用户反馈说听不到", Fact.UID),
]


@pytest.mark.parametrize(("text", "fact", "value"), LABELLED)
def test_labelled_values_are_taken_as_written(text: str, fact: Fact, value: str) -> None:
    assert first(text).value(fact) == value


@pytest.mark.parametrize(("text", "fact"), NOT_LABELLED)
def test_words_after_a_label_are_no_value(text: str, fact: Fact) -> None:
    assert first(text).value(fact) is None


# -- when it happened -----------------------------------------------------------------------

OCCURRENCES = [
    ("It happened yesterday at 20:30.", SENT, "2026-11-30T20:30+08:00"),
    ("yesterday at 8:30pm the stream froze", SENT, "2026-11-30T20:30+08:00"),
    ("last night around 11pm users reported echo", SENT, "2026-11-30T23:00+08:00"),
    ("this morning at 9:15 the app crashed", SENT, "2026-12-01T09:15+08:00"),
    ("today 3pm", SENT, "2026-12-01T15:00+08:00"),
    ("昨晚八点半出现的", SENT, "2026-11-30T20:30+08:00"),
    ("昨天下午3点20开始卡顿", SENT, "2026-11-30T15:20+08:00"),
    ("今天上午十点左右", SENT, "2026-12-01T10:00+08:00"),
    ("前天晚上11点", SENT, "2026-11-29T23:00+08:00"),
    ("发生时间：2026-11-30 20:30（北京时间）", SENT, "2026-11-30T20:30+08:00"),
    ("It started on Nov 30 at 8pm PST", SENT, "2026-11-30T20:00-08:00"),
    ("around 2026-11-30 21:05 GMT+7", SENT, "2026-11-30T21:05+07:00"),
    ("at 20:30 WIB on 30 Nov", SENT, "2026-11-30T20:30+07:00"),
    ("yesterday 9:40 IST", SENT, "2026-11-30T09:40+05:30"),
    ("yesterday at 10am EST", SENT, "2026-11-30T10:00-05:00"),
    ("Jul 3 at 8pm Pacific time", SENT, "2026-07-03T20:00-07:00"),
    ("yesterday at 20:30", datetime(2026, 12, 1, 9, 0, tzinfo=JAKARTA), "2026-11-30T20:30+07:00"),
    ("yesterday 8pm", datetime(2026, 12, 1, 9, 0, tzinfo=LOS_ANGELES), "2026-11-30T20:00-08:00"),
    ("11月30日晚上8点", SENT, "2026-11-30T20:00+08:00"),
    ("it happened last Friday at 3pm", SENT, "2026-11-27T15:00+08:00"),
    ("上周五下午三点", SENT, "2026-11-27T15:00+08:00"),
    ("about 2 hours ago", SENT, "2026-12-01T08:00+08:00"),
    ("last night around 1am", SENT, "2026-12-01T01:00+08:00"),
    ("Dec 1 2026, 08:10 UTC", SENT, "2026-12-01T08:10+00:00"),
    ("yesterday evening 8-9pm Manila time", SENT, "2026-11-30T20:00+08:00"),
    ("昨晚8-9点一直卡", SENT, "2026-11-30T20:00+08:00"),
    ("It happened on 30/11 at 20:30", SENT, "2026-11-30T20:30+08:00"),
    ("It happened on 1/12 at 08:30", SENT, "2026-12-01T08:30+08:00"),
    # A Chinese period before a clock time: the clock is read in it.
    ("11月29日晚上 11:05 左右开始黑屏", SENT, "2026-11-29T23:05+08:00"),
    ("昨天下午 4:30 用户反馈没声音", SENT, "2026-11-30T16:30+08:00"),
    ("11/30 傍晚 6:10 出现闪退", SENT, "2026-11-30T18:10+08:00"),
    ("昨晚 9:05 又崩了一次", SENT, "2026-11-30T21:05+08:00"),
    ("11月30日凌晨 3:20 掉线", SENT, "2026-11-30T03:20+08:00"),
    ("11月30日中午 12:40 开始卡", SENT, "2026-11-30T12:40+08:00"),
    ("11月30日上午 10:20 开始卡", SENT, "2026-11-30T10:20+08:00"),
    ("昨天 21:10 下午茶之后", SENT, "2026-11-30T21:10+08:00"),
]
NOT_OCCURRENCES = [
    ("It happened on 2026-11-30.", SENT),
    ("It happens every day at 20:30.", SENT),
    ("2026-11-30 20:30:01.123 E/RtcEngine: join failed", SENT),
    ("Log:\n11-30 20:30:01.123  1234  5678 E AgoraRTC: onError 17", SENT),
    ("yesterday at 20:30", None),
    ("我们有一点卡", SENT),
    ("Could we have a call next Tuesday at 3pm ICT?", SENT),
    ("Join our webinar on Dec 5 at 10:00 AM PST", SENT),
    ("想约贵司技术在12月3日下午2点开个会", SENT),
    ("The release is planned for 2026-12-20 09:00 UTC", SENT),
    (
        "---------- Forwarded message ---------\nFrom: A <a@x.com>\n"
        "Date: Mon, Nov 30, 2026 at 9:10 PM\nSubject: crash\nTo: B",
        SENT,
    ),
    ("On Mon, Nov 30, 2026 at 9:10 PM Alice <alice@example.com> wrote:", SENT),
    ("-------- 转发邮件信息 --------\n发件人：张三\n发送日期：2026-11-30 10:12\n主题：闪退", SENT),
    (
        "---- 转发的邮件 ----\n| 发件人 | 李四 |\n| 日期 | 2026年11月30日 16:05 |\n| 主题 | 卡顿 |",
        SENT,
    ),
    ("寄件者：王五\n寄件日期：2026年11月30日 下午 3:12\n主旨：黑屏", SENT),
    ("在 2026年11月30日 20:31，赵六 写道：", SENT),
]


@pytest.mark.parametrize(("text", "sent_at", "moment"), OCCURRENCES)
def test_occurrence_is_resolved_to_the_minute_with_its_offset(
    text: str, sent_at: datetime, moment: str
) -> None:
    assert first(text, sent_at=sent_at).value(Fact.OCCURRED_AT) == moment


@pytest.mark.parametrize(("text", "sent_at"), NOT_OCCURRENCES)
def test_no_occurrence_without_a_day_and_a_time_the_customer_gave(
    text: str, sent_at: datetime | None
) -> None:
    assert first(text, sent_at=sent_at).value(Fact.OCCURRED_AT) is None


@pytest.mark.parametrize(
    ("sent_at", "moment"),
    [
        (SENT, "2026-11-30T20:30+08:00"),
        (datetime(2026, 12, 1, 9, 0, tzinfo=CHICAGO), "2026-11-30T20:30-06:00"),
        (datetime(2026, 12, 1, 9, 0, tzinfo=JAKARTA), "2026-11-30T20:30-06:00"),
    ],
)
def test_cst_is_china_time_only_when_the_mail_is_sent_from_china(
    sent_at: datetime, moment: str
) -> None:
    assert (
        first("The crash was yesterday 20:30 CST", sent_at=sent_at).value(Fact.OCCURRED_AT)
        == moment
    )


def test_a_told_moment_wins_over_a_pasted_log_timestamp() -> None:
    text = (
        "2026-11-29 10:00:01.123 I/AgoraRTC: joinChannel\n"
        "The problem happened yesterday around 20:30.\n"
    )
    assert first(text).value(Fact.OCCURRED_AT) == "2026-11-30T20:30+08:00"


# -- steps to reproduce ---------------------------------------------------------------------

STEPS = [
    (
        "Steps to reproduce:\n1. Open the app\n2. Join channel test\n3. Switch the camera\n\n"
        "Thanks",
        "1. Open the app\n2. Join channel test\n3. Switch the camera",
    ),
    ("复现步骤：\n1、打开App进入直播间\n2、切换前后摄像头\n3、闪退", "1、打开App进入直播间"),
    ("Repro steps: join a channel, then mute and unmute the mic", "join a channel"),
    ("① 登录\n② 加入频道\n③ 开始推流", "加入频道"),
    (
        "How it happens:\n1. User A joins as host\n2. User B joins as audience\n3. A leaves",
        "A leaves",
    ),
    ("To reproduce: start a call, lock the screen, wait 30 seconds.", "lock the screen"),
    ("先加入频道，然后切到后台，再切回来就黑屏了", "先加入频道"),
    ("Open app -> join channel -> switch camera -> crash", "join channel"),
    ("Reproduce: join, then switch camera", "join, then switch camera"),
    ("We first open the app, then join a room and mute the mic.", "We first open the app"),
    ("复现步骤：无线耳机连上后进房，然后切后台", "无线耳机连上后进房"),
    ("- Open the lobby\n- Tap the call button\n- Wait for the ring", "Tap the call button"),
]
NOT_STEPS = [
    "复现步骤：无",
    "Steps to reproduce: N/A",
    "1. SDK version: 4.0.6\n2. Device: Xiaomi 13\n3. OS: Android 14",
    "1. How do I enable echo cancellation?\n2. Is screen sharing supported on Web?",
    "It crashes randomly, we cannot reproduce it.",
    "1. We tried reinstalling the app\n2. We tried switching networks\n3. We tried clearing cache",
    "1. Device: Xiaomi 13\n2. Join channel: abc\n3. Region: Jakarta",
    "【复现步骤】：\n【日志】：",
    "Reproduce rate: 100%",
    "Steps we tried: reinstall, reboot",
    # Lists of wishes or topics, whose verbs' words are nouns.
    "We would like to discuss:\n- a joint release for the launch\n- a shared booth at the expo"
    "\n- pricing for the launch region",
    "Our first report came in on Monday, then our QA joined a call and switched cameras.",
    "复现步骤：偶现，还没找到规律",
    "复现步骤：随机",
]


@pytest.mark.parametrize(("text", "part"), STEPS)
def test_steps_are_read_from_headings_lists_and_sentences(text: str, part: str) -> None:
    steps = first(text).value(Fact.REPRO_STEPS)
    assert steps is not None and part in steps


@pytest.mark.parametrize("text", NOT_STEPS)
def test_settings_questions_and_empty_headings_are_no_steps(text: str) -> None:
    assert first(text).value(Fact.REPRO_STEPS) is None


# -- kind -----------------------------------------------------------------------------------

KINDS = [
    ("App crashes on launch", "", Kind.CRASH),
    ("", "How do I fix this crash? It happens on join.", Kind.CRASH),
    ("joinChannel returns error code 17", "", Kind.CRASH),
    ("加入频道失败", "", Kind.CRASH),
    ("安卓闪退", "", Kind.CRASH),
    ("App freezes (ANR) after 10 minutes", "", Kind.CRASH),
    ("No sound from remote user", "", Kind.QUALITY),
    ("Echo during calls", "", Kind.QUALITY),
    ("观众端黑屏", "", Kind.QUALITY),
    ("拉流卡顿，延迟很高", "", Kind.QUALITY),
    ("Video freezes for the audience but the app keeps running", "", Kind.QUALITY),
    ("How to fix the echo?", "", Kind.QUALITY),
    ("Audio and video out of sync", "", Kind.QUALITY),
    ("Does the SDK support screen sharing on Web?", "", Kind.HOWTO),
    ("如何实现美颜？", "", Kind.HOWTO),
    ("How do we enable echo cancellation?", "", Kind.HOWTO),
    ("How can we reduce the latency for live streaming?", "", Kind.HOWTO),
    ("是否支持小程序？", "", Kind.HOWTO),
    ("Latency", "What is the minimum latency we can achieve for a quiz show?", Kind.HOWTO),
    ("Echo", "We hear our own voice back on every call.", Kind.QUALITY),
    ("Invoice for November", "", Kind.ACCOUNT),
    ("账单有问题", "", Kind.ACCOUNT),
    ("We were charged twice; the app also crashed", "", Kind.ACCOUNT),
    ("账号被冻结了，登录不了控制台", "", Kind.ACCOUNT),
    ("Partnership proposal", "Hi, we would like to talk about a partnership.", Kind.OTHER),
    ("Thanks!", "No crash since yesterday, no echo either.", Kind.OTHER),
    # Symptoms as customers write them.
    ("The app closes when a viewer taps share", "", Kind.CRASH),
    ("", "The game isn't responding after we switch rooms.", Kind.CRASH),
    ("App freeze on the lobby screen", "", Kind.CRASH),
    ("应用自动退出了", "", Kind.CRASH),
    ("Guest voice cutting out every few seconds", "", Kind.QUALITY),
    ("Lecture replays", "The host's audio drifts behind the slides after an hour.", Kind.QUALITY),
    ("", "Since 4.3 we see blocky compression artifacts on fast motion.", Kind.QUALITY),
    ("", "The presenter is too quiet even at full volume.", Kind.QUALITY),
    ("视频通话对方画面很糊", "", Kind.QUALITY),
    ("语音房里声音特别小", "", Kind.QUALITY),
    ("老师端画面定住了", "", Kind.QUALITY),
    ("觀眾端聲音斷斷續續", "", Kind.QUALITY),
    ("上課時畫面延遲很嚴重", "", Kind.QUALITY),
    # The subject's kind before the text's; a topic alone is no symptom, a state is.
    ("Remote video goes black", "We also see error 1003 in the console.", Kind.QUALITY),
    ("Web端画面卡住", "控制台没有发现任何报错。", Kind.QUALITY),
    ("Screen share is choppy", "Is there a setting for a higher frame rate?", Kind.QUALITY),
    ("Delay", "Is there a way to get under 400 ms for the audience?", Kind.HOWTO),
    ("如何在后台保持通话", "切到后台后对方就听不到了，需要怎么配置？", Kind.HOWTO),
    ("", "Does the Unity SDK support spatial audio?", Kind.HOWTO),
    ("", "Does your Electron plugin support screen capture of one window?", Kind.HOWTO),
    ("屏幕共享", "推流前要不要先调用 enableVideo？", Kind.HOWTO),
    ("網頁版可否支援虛擬背景（背景模糊）？", "", Kind.HOWTO),
    ("How to blur the background on Web?", "", Kind.HOWTO),
    ("", "Is the virtual background (blur or an image) available on Android?", Kind.OTHER),
    ("", "没有声音以后一直报错", Kind.CRASH),
    # Account words and their look-alikes.
    ("Cannot access the dashboard", "It says my password is wrong.", Kind.ACCOUNT),
    ("Usage spike this week", "Our minutes tripled overnight, please check.", Kind.ACCOUNT),
    ("", "Could you waive the minutes from the outage?", Kind.ACCOUNT),
    ("Thanks", "Kind regards,\nBill", Kind.OTHER),
    ("Release notes", "The artifacts on Maven miss the arm64 slice.", Kind.OTHER),
    ("Docs search", "The feature is there under another name.", Kind.OTHER),
    # Feedback and business by their subject, whatever the text says.
    ("Feature request: noise suppression on Web", "Users complain about noise.", Kind.OTHER),
    ("Suggestion: split the AAR", "The app crashed once while testing, not related.", Kind.OTHER),
    ("文档里错误码的说明写反了", "照着做会报错。", Kind.OTHER),
    ("iOS demo 编译不过", "Xcode 16 报错。", Kind.OTHER),
    ("Partnership inquiry", "We would like reseller pricing.", Kind.OTHER),
    ("私有化部署咨询", "能否提供报价？", Kind.OTHER),
]

FORWARDED_LAG = (
    "Please check what happened in this class.\n\n---------- Forwarded message ---------\n"
    "From: Teacher <t@example.com>\n\nThe audio was choppy. I want a refund for the lesson."
)


@pytest.mark.parametrize(("subject", "text", "kind"), KINDS)
def test_kind_follows_its_precedence(subject: str, text: str, kind: Kind) -> None:
    read = first(text, subject=subject)
    assert read.kind is kind
    assert (read.kind_excerpt == "") is (kind is Kind.OTHER)


def test_a_forwarded_mail_is_of_the_forwarders_kind_first() -> None:
    assert first(FORWARDED_LAG, subject="Fwd: choppy audio in class").kind is Kind.QUALITY
    assert first(FORWARDED_LAG.replace("choppy", "fine")).kind is Kind.ACCOUNT


def test_a_log_or_a_crash_report_alone_tells_of_a_crash() -> None:
    crashed = b"12-01 10:00:00.000  123  123 E AndroidRuntime: FATAL EXCEPTION: main\n" * 3
    calm = b"12-01 10:00:00.000  123  123 I rtc: joinChannel ok\n" * 3
    assert first("log attached", files=(attached("run.log", crashed),)).kind is Kind.CRASH
    assert first("log attached", files=(attached("run.log", calm),)).kind is Kind.OTHER
    report = attached("Player-2026-01-05-101010.ips", b"{}")
    assert first("see attached", files=(report,)).kind is Kind.CRASH


# -- whole mails ----------------------------------------------------------------------------

STORY = """Hi team,

Our Android app crashes every time a user joins a channel. We are using the RTC SDK 4.0.6
(our app version is v2.3.1). Device: Xiaomi 13, Android 14. It works fine on iOS.

App ID: a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f
Channel: live_room_88
uid 100234

It happened yesterday at 8:30pm (GMT+8).

Steps to reproduce:
1. Open the app and log in
2. Join channel live_room_88
3. Switch camera

Thanks, Bob
Sent from my iPhone
"""


def test_a_story_mail_gives_every_fact_once_with_its_words() -> None:
    read = first(STORY, subject="App crashes when joining channel on Xiaomi 13")
    assert [f.fact for f in read.facts] == [f for f in Fact if f is not Fact.LOGS]
    assert {fact: read.value(fact) for fact in Fact if fact is not Fact.REPRO_STEPS} == {
        Fact.SDK_VERSION: "4.0.6",
        Fact.PLATFORM: "Android",
        Fact.OS_VERSION: "Android 14",
        Fact.DEVICE: "Xiaomi 13",
        Fact.APP_ID: "a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f",
        Fact.CHANNEL: "live_room_88",
        Fact.UID: "100234",
        Fact.OCCURRED_AT: "2026-11-30T20:30+08:00",
        Fact.LOGS: None,
    }
    assert read.kind is Kind.CRASH
    for found in read.facts:
        assert 0 < len(found.excerpt) <= 160 and "\n" not in found.excerpt
    assert finding(read, Fact.DEVICE) == ("Xiaomi 13", Source.SUBJECT)
    assert finding(read, Fact.UID) == ("100234", Source.BODY)


def test_a_forwarded_mail_is_read_below_the_forward_line() -> None:
    text = (
        "FYI, see below.\n\n---------- Forwarded message ---------\n"
        "From: Customer <c@example.com>\nDate: Mon, Nov 30, 2026 at 9:10 PM\n"
        "Subject: black screen\nTo: support <s@example.com>\n\n"
        "> Remote video is black on iPhone 14 Pro (iOS 17.2) with SDK 4.1.0.\n"
        "> It started yesterday at 20:30.\n"
    )
    read = first(text, subject="Fwd: black screen")
    assert read.value(Fact.DEVICE) == "iPhone 14 Pro"
    assert read.value(Fact.OS_VERSION) == "iOS 17.2"
    assert read.value(Fact.SDK_VERSION) == "4.1.0"
    assert read.value(Fact.OCCURRED_AT) == "2026-11-30T20:30+08:00"
    assert read.kind is Kind.QUALITY


def test_a_chinese_original_mail_forwarded_is_read_too() -> None:
    text = (
        "转发客户的问题\n\n------------------ 原始邮件 ------------------\n"
        "发件人: 客户\n发送时间: 2026年11月30日(星期一) 晚上9:10\n主题: 闪退\n\n"
        "华为 Mate 60 Pro，鸿蒙4.0，SDK版本4.0.7，进房就闪退。"
    )
    read = first(text)
    assert read.value(Fact.DEVICE) == "华为 Mate 60 Pro"
    assert read.value(Fact.OS_VERSION) == "HarmonyOS 4.0"
    assert read.value(Fact.SDK_VERSION) == "4.0.7"
    assert read.value(Fact.OCCURRED_AT) is None
    assert read.kind is Kind.CRASH


def test_an_unfilled_template_gives_nothing_but_its_filled_fields() -> None:
    text = (
        "SDK version: x.x.x\nPlatform: Android\nOS version: ___\nDevice model: xxxx\n"
        "App ID: ____\nChannel name: TBD\nUser ID: 待补充\nSteps to reproduce: N/A\n"
    )
    read = first(text)
    assert [(f.fact, f.value) for f in read.facts] == [(Fact.PLATFORM, "Android")]


def test_a_table_rendered_from_html_is_read_label_above_value() -> None:
    text = "SDK version\n4.0.6\nDevice\nPixel 7\nOS version\nAndroid 14\n"
    read = first(text)
    assert (read.value(Fact.SDK_VERSION), read.value(Fact.DEVICE)) == ("4.0.6", "Pixel 7")
    assert read.value(Fact.OS_VERSION) == "Android 14"


def test_a_first_mail_reads_its_quoted_lines() -> None:
    read = first("> SDK version: 4.0.6\n> Device: Redmi K60\nSee above, any idea?")
    assert (read.value(Fact.SDK_VERSION), read.value(Fact.DEVICE)) == ("4.0.6", "Redmi K60")


def test_links_and_addresses_name_no_platform() -> None:
    text = "See https://docs.example.com/ios/web/get-started and mail ios-team@example.com"
    assert first(text).value(Fact.PLATFORM) is None


# -- logs: which attachments ----------------------------------------------------------------

SDK_LOG = (
    b"2026-11-30 20:30:00.001 [I] [rtc] sdk version: 4.0.6 build 1234\n"
    b"2026-11-30 20:30:00.010 [I] [rtc] device: Xiaomi 2211133C, os: Android 14\n"
    b"2026-11-30 20:30:00.020 [I] [rtc] joinChannel appId=a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f "
    b"channel=live_room_88 uid=100234\n"
    b"2026-11-30 20:30:05.400 [E] [rtc] onError 110\n"
)
LOGCAT = (
    b"--------- beginning of main\n"
    b"11-30 20:30:01.123  1234  5678 I flutter : joining\n"
    b"11-30 20:30:01.456  1234  5678 E AgoraRTC: onError 17\n"
    b"11-30 20:30:02.001  1234  5678 W AgoraRTC: reconnecting\n"
)
TOMBSTONE = (
    b"*** *** *** *** *** *** *** *** *** *** *** *** *** *** *** ***\n"
    b"Build fingerprint: 'Xiaomi/fuxi/fuxi:14/UKQ1.230804.001/V816.0.5.0.UMCCNXM:user/"
    b"release-keys'\n"
    b"Revision: '0'\nABI: 'arm64'\n"
    b"pid: 4321, tid: 4399, name: RtcEngine  >>> com.example.live <<<\n"
)
CRASH_REPORT = (
    b"Incident Identifier: 2F6C1A0B-1111-2222-3333-444455556666\n"
    b"Hardware Model:      iPhone15,2\n"
    b"Process:             LiveDemo [812]\n"
    b"OS Version:          iPhone OS 17.2 (21C62)\n"
    b"Exception Type:  EXC_BAD_ACCESS (SIGSEGV)\n"
)
NOTES = (
    b"Things we tried:\n- reinstall\n- another network\nNothing helped. Call at 20:30 tomorrow?\n"
)


@pytest.mark.parametrize(
    ("name", "data", "is_log"),
    [
        ("agorasdk.log", SDK_LOG, True),
        ("log.txt", SDK_LOG, True),
        ("output", SDK_LOG, True),
        ("logcat-2026-11-30.txt", LOGCAT, True),
        ("tombstone_03", TOMBSTONE, True),
        ("LiveDemo-2026-11-30.ips", CRASH_REPORT, True),
        ("report.crash", CRASH_REPORT, True),
        ("trace.txt", CRASH_REPORT, True),
        ("notes.txt", NOTES, False),
        (
            "config.json",
            b'{"appId": "a3f9", "channel": "x", "log": "2026-11-30 20:30:00 info"}',
            False,
        ),
        ("screenshot.png", b"\x89PNG\r\n\x1a\n" + bytes(200), False),
        ("recording.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(200), False),
        ("encrypted.xlog", bytes(range(256)) * 40, True),
    ],
)
def test_logs_are_told_by_name_and_by_content(name: str, data: bytes, is_log: bool) -> None:
    file = attached(name, data)
    assert (first("see attached", files=(file,)).value(Fact.LOGS) == file.sha256) is is_log


def test_logs_are_one_finding_of_their_hashes_named_by_their_files() -> None:
    files = (
        attached("a.log", SDK_LOG),
        attached("b.png", b"\x89PNG"),
        attached("c.ips", CRASH_REPORT),
    )
    read = first("logs attached", files=files)
    found = next(f for f in read.facts if f.fact is Fact.LOGS)
    assert found.value == f"{files[0].sha256} {files[2].sha256}"
    assert "a.log" in found.excerpt and "c.ips" in found.excerpt and "b.png" not in found.excerpt
    assert found.source is Source.LOG


def test_a_log_named_as_one_but_holding_no_log_lines_is_known_by_its_name() -> None:
    read = first("see attached", files=(attached("sdk.log", b"\x93\x00\x17\xff" * 500),))
    found = next(f for f in read.facts if f.fact is Fact.LOGS)
    assert found.source is Source.ATTACHMENT_NAME
    assert read.value(Fact.SDK_VERSION) is None


# -- logs: the facts inside -----------------------------------------------------------------


def test_an_sdk_log_gives_what_the_text_lacks() -> None:
    read = first("It crashes, log attached.", files=(attached("agorasdk.log", SDK_LOG),))
    assert read.value(Fact.SDK_VERSION) == "4.0.6"
    assert read.value(Fact.OS_VERSION) == "Android 14"
    assert read.value(Fact.DEVICE) == "Xiaomi 2211133C"
    assert read.value(Fact.PLATFORM) == "Android"
    assert read.value(Fact.APP_ID) == "a3f9c2d17e5b4c0f9d8e7a6b5c4d3e2f"
    assert read.value(Fact.CHANNEL) == "live_room_88"
    assert read.value(Fact.UID) == "100234"
    assert finding(read, Fact.SDK_VERSION)[1] is Source.LOG
    assert read.value(Fact.OCCURRED_AT) is None


def test_the_customers_words_win_over_the_log() -> None:
    text = "SDK 4.0.7 on a Pixel 8 (Android 15)"
    read = first(text, files=(attached("agorasdk.log", SDK_LOG),))
    assert (read.value(Fact.SDK_VERSION), read.value(Fact.DEVICE)) == ("4.0.7", "Pixel 8")
    assert read.value(Fact.OS_VERSION) == "Android 15"
    assert finding(read, Fact.CHANNEL) == ("live_room_88", Source.LOG)


def test_a_tombstone_gives_android_and_its_version_from_the_fingerprint() -> None:
    read = first("native crash", files=(attached("tombstone_00", TOMBSTONE),))
    assert (read.value(Fact.OS_VERSION), read.value(Fact.PLATFORM)) == ("Android 14", "Android")


def test_an_ios_crash_report_gives_the_hardware_model_and_system() -> None:
    read = first("crash report attached", files=(attached("LiveDemo.ips", CRASH_REPORT),))
    assert read.value(Fact.DEVICE) == "iPhone15,2"
    assert (read.value(Fact.OS_VERSION), read.value(Fact.PLATFORM)) == ("iOS 17.2", "iOS")


def test_a_framework_in_the_log_wins_over_the_system_named_in_the_text() -> None:
    read = first("Android app: error 17 when joining", files=(attached("logcat.txt", LOGCAT),))
    assert read.value(Fact.PLATFORM) == "Flutter"


def test_a_windows_log_gives_its_system() -> None:
    log = b"[2026-11-30 20:30:00.000][I] OS: Windows 10 (10.0.19045), sdk ver: 4.2.1\n" * 3
    read = first("see log", files=(attached("rtc.log", log),))
    assert (read.value(Fact.OS_VERSION), read.value(Fact.SDK_VERSION)) == ("Windows 10", "4.2.1")


@pytest.mark.parametrize(
    ("line", "device"),
    [
        ("sdk ver: 4.2.1, device: iPad13,4, os: iOS 17.1", "iPad13,4"),
        ("RtcEngine: machine: Lenovo ThinkCentre M70q, cpu: i5", "Lenovo ThinkCentre M70q"),
        ("AudioDevice: recording device: USB Mic (C-Media 2) {0.0.1}", None),
    ],
)
def test_a_log_line_gives_the_device_as_the_log_writes_it(line: str, device: str | None) -> None:
    log = f"[2026-11-30 20:30:00.000][I] {line}\n" * 3
    read = first("see log", files=(attached("rtc.log", log.encode()),))
    assert read.value(Fact.DEVICE) == device


@pytest.mark.parametrize(
    ("lines", "channel", "uid"),
    [
        (["[I] rtc: joinChannel: channel=quiz_42, uid=777, role=host"], "quiz_42", "777"),
        (
            ["[I] channel: joinChannel: lobby-7, uid: 31", "[I] onUserJoined: uid=99"],
            "lobby-7",
            "31",
        ),
        (
            ["[I] joinChannel room_a uid=0", "[I] onJoinChannelSuccess room_a uid=4242"],
            "room_a",
            "4242",
        ),
        (["I chatty: uid=10211(app) RenderThread identical 4 lines"], None, None),
        (["[I] onUserJoined: uid=3131, elapsed=20"], None, None),
        (["[I] onJoinChannelSuccess: elapsed=283ms"], None, None),
    ],
)
def test_a_log_gives_the_channel_and_uid_the_app_joins_with(
    lines: list[str], channel: str | None, uid: str | None
) -> None:
    log = "".join(f"2026-11-30 20:30:0{n}.000 {line}\n" for n, line in enumerate(lines * 3))
    read = first("see log", files=(attached("rtc.log", log.encode()),))
    assert (read.value(Fact.CHANNEL), read.value(Fact.UID)) == (channel, uid)


def test_a_tombstone_uid_line_is_the_process_not_the_user() -> None:
    read = first("native crash", files=(attached("tombstone_01", TOMBSTONE + b"uid: 10123\n"),))
    assert read.value(Fact.UID) is None


def test_a_gbk_log_names_the_computer_model() -> None:
    log = "2026-11-30 20:30:00.000 [I] 电脑型号: ThinkPad T490\n" * 4
    read = first("日志见附件", files=(attached("err.log", log.encode("gbk")),))
    assert read.value(Fact.DEVICE) == "ThinkPad T490"


def test_a_file_name_gives_what_text_and_log_lack() -> None:
    read = first("see attached", files=(attached("Xiaomi13_agora_4.0.6.mp4", bytes(100)),))
    assert finding(read, Fact.DEVICE) == ("Xiaomi13", Source.ATTACHMENT_NAME)
    assert read.value(Fact.LOGS) is None


# -- logs: encodings and archives -----------------------------------------------------------


def test_a_gbk_log_is_read() -> None:
    log = "2026-11-30 20:30:00.000 [I] 设备: 小米13, 系统: 安卓14, SDK版本: 4.0.7\n" * 4
    read = first("日志见附件", files=(attached("sdk.log", log.encode("gbk")),))
    assert (read.value(Fact.SDK_VERSION), read.value(Fact.OS_VERSION)) == ("4.0.7", "Android 14")


def test_a_utf16_log_with_its_bom_is_read() -> None:
    data = "\ufeff" + SDK_LOG.decode()
    read = first("log", files=(attached("rtc.txt", data.encode("utf-16-le")),))
    assert read.value(Fact.SDK_VERSION) == "4.0.6"
    assert read.value(Fact.LOGS) is not None


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_of_logs_is_a_log_and_its_facts_are_read() -> None:
    data = zipped({"screenshot.png": b"\x89PNG", "logs/agorasdk.log": SDK_LOG})
    read = first("logs zipped", files=(attached("logs.zip", data),))
    assert read.value(Fact.LOGS) == hashlib.sha256(data).hexdigest()
    assert read.value(Fact.SDK_VERSION) == "4.0.6"


def test_a_zip_of_pictures_is_no_log() -> None:
    data = zipped({"a.png": b"\x89PNG", "b.jpg": b"\xff\xd8\xff"})
    assert first("pictures", files=(attached("shots.zip", data),)).value(Fact.LOGS) is None


def test_a_gzipped_log_is_read() -> None:
    data = gzip.compress(SDK_LOG)
    read = first("log", files=(attached("agorasdk.log.gz", data),))
    assert (read.value(Fact.LOGS), read.value(Fact.SDK_VERSION)) == (
        hashlib.sha256(data).hexdigest(),
        "4.0.6",
    )


def test_a_truncated_zip_costs_nothing_but_its_name() -> None:
    lines = b"".join(
        b"2026-11-30 20:30:00.%03d [I] %s\n"
        % (n % 1000, hashlib.sha256(b"%d" % n).hexdigest().encode())
        for n in range(400)
    )
    whole = zipped({"agorasdk.log": SDK_LOG + lines})
    data = whole[: len(whole) // 2]
    read = first("log", files=(attached("logs.zip", data), attached("photos.zip", data[:300])))
    assert read.value(Fact.LOGS) == hashlib.sha256(data).hexdigest()
    assert read.value(Fact.SDK_VERSION) is None


def test_an_encrypted_zip_member_is_skipped() -> None:
    data = bytearray(zipped({"agorasdk.log": SDK_LOG}))
    # Set the "encrypted" flag in the local and the central header: zipfile then wants a
    # password; the intake must skip the member rather than fail.
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature) + flags_at
        data[at] |= 0x1
    read = first("log", files=(attached("mylogs.zip", bytes(data)),))
    assert read.value(Fact.SDK_VERSION) is None
    assert read.value(Fact.LOGS) is not None


def zip_bomb(uncompressed: int) -> bytes:
    """A zip whose one member inflates to `uncompressed` zero bytes, built from deflate
    blocks that each inflate to 1 MiB (a full flush makes every block the same)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * (uncompressed >> 20) + b"\x03\x00"
    name = b"agorasdk.log"
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(stream), uncompressed, len(name), 0
    )
    central = struct.pack(
        "<4s6H3L5H2L",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        0,
        len(stream),
        uncompressed,
        len(name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    offset = len(local) + len(name) + len(stream)
    size = len(central) + len(name)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, size, offset, 0)
    return local + name + stream + central + name + end


def test_a_zip_bomb_is_read_only_to_its_bound() -> None:
    bomb = zip_bomb(2 << 30)
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        assert archive.infolist()[0].file_size == 2 << 30
    tracemalloc.start()
    started = time.perf_counter()
    read = first("logs", files=(attached("logs.zip", bomb),))
    spent = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert spent < 1.0
    assert peak < 8 * MAX_ARCHIVE_BYTES
    assert read.value(Fact.LOGS) == hashlib.sha256(bomb).hexdigest()


def test_a_gzip_bomb_is_read_only_to_its_bound() -> None:
    bomb = gzip.compress(bytes(256 << 20), compresslevel=1)
    started = time.perf_counter()
    read = first("log", files=(attached("big.log.gz", bomb),))
    assert time.perf_counter() - started < 1.0
    assert read.value(Fact.LOGS) is not None


def test_a_20_mib_log_is_read_at_its_head_and_its_tail_only() -> None:
    line = b"2026-11-30 20:30:00.000 [I] [rtc] onNetworkQuality uid=1 tx=1 rx=1\n"
    head = b"2026-11-30 20:30:00.000 [I] [rtc] uid: 100234\n"
    middle = b"2026-11-30 20:30:00.000 [I] [rtc] sdk version: 9.9.9\n"
    tail = b"2026-11-30 20:30:00.000 [I] [rtc] device: Pixel 8 Pro\n"
    filler = line * (10 * 1024 * 1024 // len(line))
    data = head + filler + middle + filler + tail
    assert len(data) > 20 * 1024 * 1024 > HEAD_BYTES + TAIL_BYTES
    started = time.perf_counter()
    read = first("big log", files=(attached("agorasdk.log", data),))
    assert time.perf_counter() - started < 1.0
    assert (read.value(Fact.UID), read.value(Fact.DEVICE)) == ("100234", "Pixel 8 Pro")
    assert read.value(Fact.SDK_VERSION) is None


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04" + bytes(range(256)) * 8,
        b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8,
        b"PK\x05\x06" + b"\xff" * 18,
        b"",
    ],
)
@pytest.mark.parametrize("name", ["logs.zip", "logs.gz", "logs.tgz", "logs.7z", "x.log"])
def test_garbage_in_any_archive_or_log_name_raises_nothing(data: bytes, name: str) -> None:
    read = first("see attached", files=(attached(name, data),))
    assert read.value(Fact.SDK_VERSION) is None
    assert read.value(Fact.LOGS) == hashlib.sha256(data).hexdigest()


# -- replies to our ask ---------------------------------------------------------------------


def block(language: str, answers: dict[Fact, str], quote: str = "") -> str:
    colon = "：" if language == "zh" else ": "
    return "\n".join(
        f"{quote}{LABELS[fact].said_in(language)}{colon}{answers.get(fact, '____')}"
        for fact in (Fact.SDK_VERSION, Fact.PLATFORM, Fact.OS_VERSION, Fact.DEVICE, Fact.LOGS)
    )


def test_answers_in_the_english_block_are_read_and_normalised() -> None:
    text = block(
        "en",
        {
            Fact.SDK_VERSION: "v4.0.7",
            Fact.PLATFORM: "flutter",
            Fact.OS_VERSION: "安卓14",
            Fact.DEVICE: "小米13",
        },
    )
    read = reply(text, text)
    assert [(f.fact, f.value, f.source) for f in read.facts] == [
        (Fact.SDK_VERSION, "4.0.7", Source.ANSWER),
        (Fact.PLATFORM, "Flutter", Source.ANSWER),
        (Fact.OS_VERSION, "Android 14", Source.ANSWER),
        (Fact.DEVICE, "小米13", Source.ANSWER),
    ]
    assert read.kind is Kind.OTHER


def test_answers_in_the_quoted_chinese_block_are_read() -> None:
    text = "见下\n\n" + block(
        "zh", {Fact.SDK_VERSION: "4.0.8", Fact.DEVICE: "华为 Mate 60 Pro"}, quote="> "
    )
    read = reply(text, "见下")
    assert read.value(Fact.SDK_VERSION) == "4.0.8"
    assert read.value(Fact.DEVICE) == "华为 Mate 60 Pro"
    assert finding(read, Fact.PLATFORM) == ("Android", Source.ANSWER)
    assert read.value(Fact.OS_VERSION) is None


@pytest.mark.parametrize(
    ("line", "fact", "value"),
    [
        ("SDK version = 4.0.7", Fact.SDK_VERSION, "4.0.7"),
        ("SDK 版本：4.0.7____", Fact.SDK_VERSION, "4.0.7"),
        ("sdk_version: 4.0.7", Fact.SDK_VERSION, "4.0.7"),
        ("Platform - iOS", Fact.PLATFORM, "iOS"),
        ("平台：安卓", Fact.PLATFORM, "Android"),
        ("OS version: iOS17.2", Fact.OS_VERSION, "iOS 17.2"),
        ("系统版本：鸿蒙4.0", Fact.OS_VERSION, "HarmonyOS 4.0"),
        ("设备型号: iPhone 14 Pro (iOS 17)", Fact.DEVICE, "iPhone 14 Pro"),
        ("App ID: 1400123456", Fact.APP_ID, "1400123456"),
        ("频道名：room_9", Fact.CHANNEL, "room_9"),
        ("User ID: 1001", Fact.UID, "1001"),
        (
            "When it happened (with time zone): 昨晚八点半",
            Fact.OCCURRED_AT,
            "2026-11-30T20:30+08:00",
        ),
        ("发生时间（含时区）：2026-11-30 20:30 GMT+7", Fact.OCCURRED_AT, "2026-11-30T20:30+07:00"),
        ("When it happened: yesterday 9pm PST", Fact.OCCURRED_AT, "2026-11-30T21:00-08:00"),
        (
            "Steps to reproduce: join, then switch camera",
            Fact.REPRO_STEPS,
            "join, then switch camera",
        ),
    ],
)
def test_an_answer_line_takes_any_colon_and_either_language(
    line: str, fact: Fact, value: str
) -> None:
    read = reply(f"> {line}", "")
    assert read.value(fact) == value
    assert finding(read, fact)[1] is Source.ANSWER


@pytest.mark.parametrize(
    "answer",
    [
        "unknown",
        "don't know",
        "not sure",
        "N/A",
        "n/a",
        "none",
        "不知道",
        "不清楚",
        "无",
        "no idea, sorry",
    ],
)
def test_an_answer_of_not_knowing_is_unknown(answer: str) -> None:
    read = reply(f"Device model: {answer}\nSDK log: {answer}", "")
    assert (read.value(Fact.DEVICE), read.value(Fact.LOGS)) == (UNKNOWN, UNKNOWN)


def test_blank_answers_and_latest_are_no_answers() -> None:
    read = reply(block("en", {Fact.SDK_VERSION: "latest"}), "")
    assert read.facts == ()


def test_an_answer_naming_no_one_model_is_no_device() -> None:
    assert reply("Device model: many devices", "").value(Fact.DEVICE) is None


def test_a_platform_said_to_be_uninvolved_is_not_the_platform() -> None:
    text = "升级到4.0.8了，还是闪退，机型是vivo X100，鸿蒙不涉及。"
    assert reply(text, text).value(Fact.PLATFORM) == "Android"
    assert (
        first("Works on iOS. Our users with a Xiaomi 13 see the crash.").value(Fact.PLATFORM)
        == "Android"
    )


def test_the_replys_own_answer_wins_over_the_quoted_one() -> None:
    text = "SDK version: 4.0.8\n\n> SDK version: 4.0.7\n> Device model: Pixel 7"
    read = reply(text, "SDK version: 4.0.8")
    assert (read.value(Fact.SDK_VERSION), read.value(Fact.DEVICE)) == ("4.0.8", "Pixel 7")


@pytest.mark.parametrize(
    ("reply_text", "fact", "value"),
    [
        ("we are on 4.0.7 now", Fact.SDK_VERSION, "4.0.7"),
        ("Upgraded to 4.0.8, same crash.", Fact.SDK_VERSION, "4.0.8"),
        ("升级到4.0.8了，还是闪退", Fact.SDK_VERSION, "4.0.8"),
        ("机型是小米13", Fact.DEVICE, "小米13"),
        ("It happened again this morning at 9:15", Fact.OCCURRED_AT, "2026-12-01T09:15+08:00"),
    ],
)
def test_free_sentences_of_a_reply_are_read(reply_text: str, fact: Fact, value: str) -> None:
    text = f"{reply_text}\n\nOn Mon, Nov 30, 2026 at 9:10 PM Support wrote:\n> Platform: ____"
    read = reply(text, reply_text)
    assert read.value(fact) == value
    assert finding(read, fact)[1] is Source.BODY


def test_quoted_history_is_no_free_sentence() -> None:
    text = "Thanks.\n\n> we are on 4.0.7 now\n> our phone is a Pixel 7"
    read = reply(text, "Thanks.\n\n> we are on 4.0.7 now")
    assert read.value(Fact.SDK_VERSION) is None
    assert read.value(Fact.DEVICE) is None


def test_a_fill_in_answer_wins_over_a_free_sentence() -> None:
    text = "we upgraded to 4.0.9 yesterday\nSDK version: 4.0.8"
    assert reply(text, text).value(Fact.SDK_VERSION) == "4.0.8"


def test_a_quoted_line_answers_only_a_fact_we_asked_for() -> None:
    text = "We upgraded to SDK 4.0.8.\n\n> > SDK version: 4.0.6\n> > Device model: Pixel 8"
    new_part = "We upgraded to SDK 4.0.8."
    asked = frozenset({Fact.DEVICE})
    findings = read_reply(MailText("Re: crash", text, new_part, (), SENT, asked))
    assert findings.value(Fact.SDK_VERSION) == "4.0.8"
    assert findings.value(Fact.DEVICE) == "Pixel 8"


def test_free_sentences_are_read_above_the_quoted_history_only() -> None:
    text = "we are on 4.0.7 now\n\n-----Original Message-----\nFrom: s\nwe are on 4.0.1"
    assert reply(text, extract_reply(text)).value(Fact.SDK_VERSION) == "4.0.7"
    assert reply(text, "").value(Fact.SDK_VERSION) is None


def test_steps_answered_below_their_label_are_read() -> None:
    text = "Steps to reproduce:\n1. join\n2. switch camera\nSDK log: ____"
    assert reply(text, text).value(Fact.REPRO_STEPS) == "1. join\n2. switch camera"


def test_logs_attached_to_a_reply_are_read() -> None:
    files = (attached("agorasdk.log", SDK_LOG),)
    read = reply("log attached", "log attached", files=files)
    assert read.value(Fact.LOGS) == files[0].sha256
    assert read.value(Fact.SDK_VERSION) == "4.0.6"


# -- whatever comes in ----------------------------------------------------------------------

# Pieces of real reports, odd characters (NUL, a lone surrogate, "İ" that lowers to two
# characters, circled numbers) and fragments of forms, in any order.
HOSTILE_TEXT = st.lists(
    st.sampled_from(
        list("aZ09 .:-_/\\\n\t>【】：，。①İﬁ\x00\u200b\ud800😀年月日点半昨晚下午")
        + ["GMT+8", "PM", "SDK版本", "v4.0.6", "iOS", "安卓", "Xiaomi 13", "channel:", "uid="]
    ),
    max_size=120,
).map("".join)
FILE_NAMES = st.sampled_from(["a.log", "b.zip", "c.gz", "d.tgz", "e.7z", "f.txt", "g.ips", "h.png"])


@settings(max_examples=150, deadline=None)
@given(
    text=HOSTILE_TEXT, data=st.binary(max_size=400), name=FILE_NAMES, offset=st.integers(-12, 14)
)
def test_any_text_and_file_are_read_without_an_exception(
    text: str, data: bytes, name: str, offset: int
) -> None:
    sent_at = datetime(2026, 12, 1, tzinfo=timezone(timedelta(hours=offset)))
    mail = MailText(text[:40], text, text[:20], (attached(name, data),), sent_at)
    for read in (read_first_mail(mail), read_reply(mail)):
        assert len({found.fact for found in read.facts}) == len(read.facts)
        assert all(len(found.excerpt) <= 160 and "\n" not in found.excerpt for found in read.facts)


def test_a_tar_of_logs_gzipped_is_read() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("notes.md", b"# notes\n"), ("logs/agorasdk.log", SDK_LOG)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    read = first("logs", files=(attached("client-2026-11-30.tgz", data),))
    assert (read.value(Fact.LOGS), read.value(Fact.SDK_VERSION)) == (
        hashlib.sha256(data).hexdigest(),
        "4.0.6",
    )


def test_a_zip_member_of_an_unknown_method_does_not_hide_the_others() -> None:
    data = bytearray(zipped({"a.log": b"first", "agorasdk.log": SDK_LOG}))
    # Compression method 99 (AES) for the first member, in its local and central header.
    for signature, method_at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        data[data.find(signature) + method_at] = 99
    read = first("logs", files=(attached("logs.zip", bytes(data)),))
    assert read.value(Fact.SDK_VERSION) == "4.0.6"


def test_every_table_is_read_only_on_the_lines_that_hold_its_words() -> None:
    """A row starting with no fixed word (an optional brand: "(?:asus )?rog phone") would
    make its whole table read every line of every mail."""
    searches = [
        mentions.NAMED_PLATFORMS,
        mentions.IMPLIED_PLATFORMS,
        mentions.SYSTEMS,
        mentions.DEVICE,
        mentions.DEVICE_LABEL,
        *identifiers.LABELLED.values(),
        *kinds.WORDS.values(),
        steps.HEADING,
        steps.SEQUENCE,
    ]
    assert all(searched.words for searched in searches)


def test_many_large_logs_are_all_named_and_read_within_bounds() -> None:
    line = b"2026-11-30 20:30:00.000 [I] [rtc] onNetworkQuality uid=1 tx=1 rx=1\n"
    files = tuple(attached(f"agorasdk-{n}.log", line * ((2 << 20) // len(line))) for n in range(12))
    started = time.perf_counter()
    read = first("logs", files=files)
    assert time.perf_counter() - started < 2.0
    assert read.value(Fact.LOGS) == " ".join(file.sha256 for file in files)


def test_a_huge_mail_and_a_huge_reply_are_read_within_bounds() -> None:
    text = "SDK version: 4.0.7\n" + "The stream stutters every few seconds.\n" * 300_000
    started = time.perf_counter()
    assert first(text).value(Fact.SDK_VERSION) == "4.0.7"
    assert reply(text, text).value(Fact.SDK_VERSION) == "4.0.7"
    assert reply(text, "").value(Fact.SDK_VERSION) == "4.0.7"
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("Crashes on my Samsung Galaxy A54 5G right after joining.", "Samsung Galaxy A54 5G"),
        ("Tested on an iPhone SE (2022), the audio drops.", "iPhone SE (2022)"),
        ("Our tester uses a Motorola moto g54, video freezes.", "Motorola moto g54"),
        ("The Nokia X30 4G shows a black remote view.", "Nokia X30 4G"),
        ("Pupils on a Lenovo Chromebook Duet 5 hear no audio.", "Lenovo Chromebook Duet 5"),
        ("It fails on the Amazon Fire HD 8 Plus we sell.", "Amazon Fire HD 8 Plus"),
        ("在小米平板5上推流黑屏。", "小米平板5"),
        ("华为MatePad 11.5 上进房间就闪退。", "华为MatePad 11.5"),
        ("OPPO Pad 2 上声音断断续续。", "OPPO Pad 2"),
        ("同事的华硕天选3 上屏幕共享卡顿。", "华硕天选3"),
    ],
)
def test_a_model_is_read_with_its_maker_edition_and_year(text: str, device: str) -> None:
    assert first(text).value(Fact.DEVICE) == device


@pytest.mark.parametrize(
    "text",
    [
        "We fire 10 requests per second at the token server.",
        "Our lab has 20 Chromebooks of all kinds.",
        "The 2024 build crashes; the 2023 one did not.",
    ],
)
def test_words_that_look_like_models_are_not_devices(text: str) -> None:
    assert first(text).value(Fact.DEVICE) is None


def test_a_version_with_dots_is_not_a_date() -> None:
    text = "Built with Unity 2021.3.8f1 and your SDK 4.2.6; it crashed yesterday at 9.30pm."
    found = first(text, sent_at=datetime(2026, 12, 9, 10, 0, tzinfo=timezone(timedelta(hours=8))))
    assert found.value(Fact.OCCURRED_AT) == "2026-12-08T21:30+08:00"


@pytest.mark.parametrize(
    "sent_at",
    [
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-23))),
    ],
)
def test_a_date_at_the_ends_of_the_calendar_reads_no_relative_time(sent_at: datetime) -> None:
    text = "It crashed last night around 11pm, 3 days ago, 昨晚八点半, this morning at 9:15."
    assert first(text, sent_at=sent_at).value(Fact.OCCURRED_AT) is None
    assert reply(text, text, sent_at=sent_at).value(Fact.OCCURRED_AT) is None
