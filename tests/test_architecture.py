"""The import table: data flows one way, and only the wiring modules see every stage.

receive (smtp_inbound) → spool → parse (parsing, and parse_ahead in a child process) →
thread (threader) → apply (workflow, with the pure readers commands and confirmation) →
notify (notifications) → deliver (delivery). A receiver's one job is to hand mail to the
spool, so that is the single forward import; everything else imports only earlier stages
and the shared modules (config, errors, tokens, storage). `pipeline`, `timers`, `app` and
`cli` wire. `loops` judges automatic mail from what parsing read, for those that answer
mail. A package (`parsing/`) counts as one module: its files' imports are the package's.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = {"errors", "config", "tokens", "limits"}

MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors", "limits"},
    "tokens": set(),
    "smtp_inbound": {"errors", "spool", "tokens"},
    "imap_inbound": {"errors", "config", "spool"},
    "spool": {"errors", "limits"},
    "limits": {"errors"},
    "parsing": {"errors", "limits"},
    "parse_ahead": {"errors", "limits", "parsing", "spool"},
    "threader": {"errors", "parsing", "tokens"},
    "commands": set(),
    "confirmation": set(),
    "workflow": {"errors", "config", "parsing", "commands", "confirmation", "tokens"},
    "loops": {"parsing"},
    "notifications": {"errors", "config", "parsing", "loops", "tokens", "workflow"},
    "delivery": {"errors"},
    "pipeline": {
        "errors",
        "spool",
        "parsing",
        "parse_ahead",
        "threader",
        "workflow",
        "notifications",
        "tokens",
        "limits",
        "loops",
    },
    "timers": {"notifications", "workflow"},
    "app": SHARED
    | {
        "smtp_inbound",
        "imap_inbound",
        "spool",
        "limits",
        "parsing",
        "parse_ahead",
        "threader",
        "workflow",
        "notifications",
        "delivery",
        "pipeline",
        "timers",
    },
    "cli": SHARED | {"app"},
}
PURE = {"parsing", "commands", "confirmation", "limits"}
IMPURE_MODULES = {
    "sqlalchemy",
    "storage",
    "socket",
    "smtplib",
    "asyncio",
    "imapclient",
    "aiosmtpd",
    "os",
}
# Of those, the ones that touch no database or network: text cleaning is pure.
PURE_EXCEPTIONS = {"storage.text"}


def imports_of(paths: list[Path]) -> set[str]:
    """Every module the files import; `from gateway import x` counts as `gateway.x`."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module == "gateway":
                found.update(f"gateway.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def gateway_modules() -> dict[str, list[Path]]:
    """Each module of `gateway` by name, with its files: a package's are all of its own."""
    modules = {
        path.stem: [path]
        for path in (ROOT / "gateway").glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }
    for package in (ROOT / "gateway").iterdir():
        if (package / "__init__.py").is_file():
            modules[package.name] = sorted(package.rglob("*.py"))
    return modules


def test_every_gateway_module_is_in_the_import_table() -> None:
    assert set(gateway_modules()) == set(MAY_IMPORT)


def test_stages_import_only_earlier_stages() -> None:
    for name, paths in gateway_modules().items():
        used = {
            imported.split(".")[1]
            for imported in imports_of(paths)
            if imported.startswith("gateway.")
        } - {name}
        assert used <= MAY_IMPORT[name], f"gateway/{name} imports {used - MAY_IMPORT[name]}"


def test_pure_modules_touch_no_database_or_network() -> None:
    modules = gateway_modules()
    for name in PURE:
        impure = {
            imported
            for imported in imports_of(modules[name])
            if imported.split(".")[0] in IMPURE_MODULES and imported not in PURE_EXCEPTIONS
        }
        assert not impure, f"gateway/{name} imports {impure}"


def test_storage_never_imports_gateway() -> None:
    for path in (ROOT / "storage").rglob("*.py"):
        offending = {i for i in imports_of([path]) if i == "gateway" or i.startswith("gateway.")}
        assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


def test_only_config_reads_the_environment() -> None:
    for name, paths in gateway_modules().items():
        for path in paths:
            if name != "config":
                assert "os.environ" not in path.read_text("utf-8"), path.relative_to(ROOT)


def test_only_parsing_imports_mail_parser() -> None:
    for name, paths in gateway_modules().items():
        if name != "parsing":
            assert "mailparser" not in {i.split(".")[0] for i in imports_of(paths)}, name
