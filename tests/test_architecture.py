"""The design, checked: data flows one way, each cross-cutting rule has one home, and the
code stays small enough to read.

`FLOW` is the order of work, receive → spool → parse → classify → thread → apply → notify →
record → deliver, after the shared foundation (errors, the clock, limits, the tally of
refusals, settings, reply tokens, the database's errors, dying with the parent) and before
the modules that wire stages together. A module imports only modules before it; the one
exception is a receiver handing mail to the spool, its single job. The code follows this
table, not the table the code.
"""

from __future__ import annotations

import ast
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOW = [
    # the foundation every stage may use
    "phrases",
    "errors",
    "clock",
    "limits",
    # what the listeners refused at the door, counted for the figures
    "refusals",
    # the facts a report gives and their pure readers: the settings name the facts each kind
    # of report needs, the workflow records what the readers find
    "intake",
    # service time: working hours, holidays, shifts, targets and the clocks they make
    "service",
    # settings: the kinds of value, the sections and their defaults, loading them
    "setting_values",
    "settings",
    "tables",
    "config",
    "tokens",
    "links",
    "database",
    # what the gateways on one database agree on through it: the secret, one-at-a-time work
    "hosts",
    # every child process: dying with its parent
    "lifeline",
    # receive
    "smtp_data",
    "smtp_inbound",
    "imap_client",
    "imap_inbound",
    # spool
    "spool",
    # parse (in a child process too)
    "parsing",
    "parse_ahead",
    # classify: the message as the later stages see it; automatic mail
    "inbound",
    "loops",
    # the rows a message leaves on a ticket; what a bounce does
    "trail",
    "bounces",
    # thread
    "threader",
    # apply: the pure readers of commands and confirmations, then the state machine
    "commands",
    "confirmation",
    # the knowledge base: articles, their index and search, "that solved it", drafts
    "knowledge",
    "workflow",
    # suggest: the articles that may answer a new ticket
    "suggestions",
    # notify: what a file passed on is, how mail is built and kept within its line limit,
    # which template, to whom, what a notice says, and what one message causes
    "filetypes",
    "composing",
    "linelength",
    "rendering",
    "audience",
    "outbox",
    "notice_context",
    "fact_sheet",
    "service_words",
    "notifications",
    # the operators' digest of quarantined mail
    "quarantine_digest",
    # record
    "receipts",
    # deliver
    "delivery",
    # wiring: one message's way, the executor around it, time-based work, building the
    # stages, running them, the CLI
    "pipeline",
    "executor",
    "deadlines",
    "timers",
    "app",
    # moving the blobs of the data directory into the database
    "blob_moves",
    # serve keeps the knowledge base's index in line with its folder
    "kb_watch",
    # the web service: status pages, the engineers' queue, health and figures
    "web",
    "serving",
    "display",
    # the operators' commands: reading tickets, acting on them
    "lookup",
    # the figures of how support is doing, and the page and command that show them
    "report",
    "report_json",
    "report_page",
    "operators",
    # the knowledge base's commands: index, search, list
    "kb_commands",
    "cli",
]
# A receiver's one job is to hand mail to the spool: the single forward import.
FORWARD = {("smtp_inbound", "spool"), ("imap_inbound", "spool")}
PURE = {
    "phrases",
    "intake",
    "service",
    "parsing",
    "commands",
    "confirmation",
    "limits",
    "composing",
    "filetypes",
    "linelength",
}
IMPURE_MODULES = {
    "sqlalchemy",
    "socket",
    "smtplib",
    "asyncio",
    "imapclient",
    "aiosmtpd",
    "os",
    "storage.models",
    "storage.session",
    "storage.rows",
    "storage.blobs",
}
# Reading the time of day; `clock` is the one module that may.
WALL_CLOCK = re.compile(
    r"\b(?:datetime\.now|datetime\.utcnow|date\.today|time\.time|"
    r"time\.time_ns|time\.localtime|time\.gmtime|make_msgid|formatdate)\("
)

MAX_MODULE_CODE_LINES = 400
MAX_PARAMETERS = 6
MEDIAN_FUNCTION_LINES = 9
P90_FUNCTION_LINES = 20


def module_files() -> dict[str, list[Path]]:
    """Each gateway module by name; a package counts as one module of all its files."""
    gateway = ROOT / "gateway"
    modules = {
        path.stem: [path]
        for path in gateway.glob("*.py")
        if path.stem not in ("__init__", "__main__")
    }
    # A package counts with or without its `__init__.py`, as Python imports it either way.
    for package in {path.parent for path in gateway.glob("*/*.py")}:
        modules[package.name] = sorted(package.glob("*.py"))
    return modules


def storage_files() -> list[Path]:
    return [path for path in (ROOT / "storage").rglob("*.py") if "versions" not in path.parts]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}" for alias in node.names if node.module == "gateway"
            )
    return found


def gateway_imports(paths: list[Path]) -> set[str]:
    return {
        imported.split(".")[1]
        for path in paths
        for imported in imports_of(path)
        if imported.startswith("gateway.")
    }


def test_every_gateway_module_has_its_place_in_the_flow() -> None:
    assert sorted(module_files()) == sorted(FLOW)


def test_stages_import_only_what_comes_before_them() -> None:
    for name, paths in module_files().items():
        later = {
            used
            for used in gateway_imports(paths) - {name}
            if FLOW.index(used) > FLOW.index(name) and (name, used) not in FORWARD
        }
        assert not later, f"gateway/{name} imports {later}, which come after it"


def test_pure_modules_touch_no_database_or_network() -> None:
    for name in PURE:
        for path in module_files()[name]:
            used = {
                imported
                for imported in imports_of(path)
                if any(
                    imported == impure or imported.startswith(impure + ".")
                    for impure in IMPURE_MODULES
                )
            }
            assert not used, f"{path.relative_to(ROOT)} imports {used}"


def test_storage_never_imports_gateway() -> None:
    for path in storage_files():
        offending = {i for i in imports_of(path) if i == "gateway" or i.startswith("gateway.")}
        assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


def test_only_config_reads_the_environment() -> None:
    for name, paths in module_files().items():
        for path in paths:
            if name != "config":
                assert "os.environ" not in path.read_text("utf-8"), path.name


def test_only_parsing_imports_mail_parser() -> None:
    for name, paths in module_files().items():
        for path in paths:
            if name != "parsing":
                assert "mailparser" not in {i.split(".")[0] for i in imports_of(path)}, name


def test_only_the_clock_reads_the_time_of_day() -> None:
    readers = [
        path.relative_to(ROOT)
        for paths in module_files().values()
        for path in paths
        if WALL_CLOCK.search(path.read_text("utf-8"))
    ]
    readers += [
        path.relative_to(ROOT)
        for path in storage_files()
        if WALL_CLOCK.search(path.read_text("utf-8"))
    ]
    assert [str(path) for path in readers] == ["gateway/clock.py"]


# -- the size of things ----------------------------------------------------------------------


def docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(source: list[str], docstrings: set[int], first: int, last: int) -> int:
    """Lines from `first` to `last` that are neither blank, comments nor docstrings."""
    return sum(
        1
        for number in range(first, last + 1)
        if number not in docstrings
        and source[number - 1].strip()
        and not source[number - 1].strip().startswith("#")
    )


def shapes() -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """Code lines of each file, and (name, code lines, parameters) of each function."""
    modules: dict[str, int] = {}
    functions: list[tuple[str, int, int]] = []
    for path in [path for paths in module_files().values() for path in paths] + storage_files():
        text = path.read_text("utf-8")
        tree, source = ast.parse(text), text.splitlines()
        docstrings = docstring_lines(tree)
        name = str(path.relative_to(ROOT))
        modules[name] = code_lines(source, docstrings, 1, len(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                named = [
                    a.arg
                    for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
                    if a.arg not in ("self", "cls")
                ]
                count = len(named) + bool(arguments.vararg) + bool(arguments.kwarg)
                lines = code_lines(source, docstrings, node.lineno, node.end_lineno or node.lineno)
                functions.append((f"{name}:{node.name}", lines, count))
    return modules, functions


def test_no_module_is_too_long_to_read() -> None:
    modules, _ = shapes()
    long = {name: lines for name, lines in modules.items() if lines > MAX_MODULE_CODE_LINES}
    assert not long


def test_functions_are_short_and_take_few_parameters() -> None:
    _, functions = shapes()
    crowded = [(name, count) for name, _, count in functions if count > MAX_PARAMETERS]
    assert not crowded
    lengths = sorted(lines for _, lines, _ in functions)
    assert statistics.median(lengths) <= MEDIAN_FUNCTION_LINES
    assert lengths[int(len(lengths) * 0.9)] <= P90_FUNCTION_LINES


def test_code_is_formatted_and_lint_clean() -> None:
    for command in (["ruff", "format", "--check", "."], ["ruff", "check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_gateway_and_storage_type_check_strictly() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
