"""Reading engineers' commands from the top of a reply (pure, no servers)."""

from __future__ import annotations

from gateway.commands import Command, read_commands


def test_commands_on_top_are_read_and_the_rest_is_the_reply() -> None:
    block = read_commands(
        "#priority p1\n\n#assign <Eng2@Example.com>\n#resolve\n\nHi Alice,\nfixed in 5.2.2."
    )
    assert block.commands == (
        Command("priority", "P1", "#priority p1"),
        Command("assign", "eng2@example.com", "#assign <Eng2@Example.com>"),
        Command("status", "resolved", "#resolve"),
    )
    assert block.body == "Hi Alice,\nfixed in 5.2.2." and not block.note


def test_a_command_after_the_first_words_is_text() -> None:
    block = read_commands("Looking into it.\n#status closed\n> #resolve")
    assert block.commands == () and block.refusals == ()
    assert block.body == "Looking into it.\n#status closed\n> #resolve"


def test_quoted_command_lines_are_never_commands() -> None:
    block = read_commands("> #status closed\n> #priority P1\nOK")
    assert block.commands == ()


def test_note_takes_the_rest_of_the_message() -> None:
    block = read_commands("#status waiting\n#note asked for logs\nsee JIRA-12\n#resolve")
    assert block.commands == (Command("status", "waiting", "#status waiting"),)
    assert block.note and block.body == "asked for logs\nsee JIRA-12\n#resolve"


def test_malformed_commands_are_refused_with_a_reason() -> None:
    block = read_commands(
        "#status frozen\n#priority P9\n#assign nobody\n#resolve now\n#frob\n#escalate"
    )
    reasons = [refusal.reason.en for refusal in block.refusals]
    assert reasons[0].startswith("#status needs one of: open, waiting")
    assert reasons[1].startswith("#priority needs one of: P1")
    assert reasons[2] == "#assign needs an engineer's address"
    assert reasons[3] == "#resolve takes no argument"
    assert reasons[4].startswith("unknown command")
    assert block.commands == (Command("escalate", "", "#escalate"),)


def test_a_hash_number_is_not_a_command() -> None:
    block = read_commands("#1 priority for us is the crash.")
    assert block.commands == () and block.refusals == ()
    assert block.body.startswith("#1 priority")
