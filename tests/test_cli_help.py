"""``xce --help`` and its commands' help: plain text, every option explained."""

from __future__ import annotations

import contextlib
import io

import pytest

from xce._bench import parser as bench_parser
from xce._cli import main


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize("argv", [["--help"], ["info", "--help"], ["demo", "--help"],
                                  ["bench", "--help"]])  # fmt: skip
def test_help_is_plain_text(argv):
    text = _help(argv)
    assert text.startswith("usage: xce")
    # No reStructuredText markup and no pointers into the source.
    for markup in ("``", ":func:", ":mod:", "xce._"):
        assert markup not in text, (markup, text)


def test_every_option_has_help():
    for action in bench_parser()._actions:
        assert action.help, action.option_strings
    text = _help(["demo", "--help"])
    assert "--tolerance" in text and "agreeing" in text
