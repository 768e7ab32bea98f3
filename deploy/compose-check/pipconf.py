"""Print a pip.conf for the python stand-in: the index this host's pip uses, so pip in an
image build reaches the same one.

Read from the files pip reads (/etc/pip.conf, ~/.pip/pip.conf, ~/.config/pip/pip.conf, later
ones winning) and PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST. Only http(s) indexes
are kept: a file:// index or a find-links folder is on this host's disk, not in the build.
The certificate bundle is the image's own (the host's extra CAs are copied into it).
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

FILES = [Path("/etc/pip.conf"), Path.home() / ".pip/pip.conf", Path.home() / ".config/pip/pip.conf"]
KEYS = ["index-url", "extra-index-url", "trusted-host", "timeout"]
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def host_settings() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in FILES:
        config = configparser.ConfigParser()
        try:
            config.read(path)
        except (OSError, configparser.Error) as exc:
            print(f"pipconf: {path} skipped: {exc}", file=sys.stderr)
            continue
        for section in ("global", "install"):
            if config.has_section(section):
                found |= {k: v for k, v in config.items(section) if k in KEYS}
    for key in KEYS:
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            found[key] = value
    return found


def reachable_from_a_build(settings: dict[str, str]) -> dict[str, str]:
    kept = dict(settings)
    for key in ("index-url", "extra-index-url"):
        urls = settings.get(key, "").split()
        remote = [url for url in urls if url.startswith(("http://", "https://"))]
        for url in set(urls) - set(remote):
            print(f"pipconf: {key} {url} is on this host only, not passed on", file=sys.stderr)
        if remote:
            kept[key] = " ".join(remote)
        else:
            kept.pop(key, None)
    return kept


def main() -> None:
    settings = reachable_from_a_build(host_settings()) | {"cert": BUNDLE}
    print("[global]")
    for key, value in sorted(settings.items()):
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
