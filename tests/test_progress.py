"""Progress bars: drawn on a terminal, never into a pipe or with --quiet."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
SYNTH_STEP = "generate 20 patients"


def _on_a_terminal(*args: str) -> str:
    """Run ``billing ARGS`` with a pseudo-terminal as its output; what it drew, plain."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: billing, on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "cli.main", *args])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return ANSI.sub(b"", out).decode("utf-8", "replace")


def test_a_long_command_shows_its_steps_on_a_terminal(tmp_path: Path) -> None:
    drawn = _on_a_terminal("synth", "--patients", "20", "--out", str(tmp_path / "b"))
    assert SYNTH_STEP in drawn
    assert "wrote" in drawn


def test_quiet_draws_no_progress_on_a_terminal(tmp_path: Path) -> None:
    drawn = _on_a_terminal("--quiet", "synth", "--patients", "20", "--out", str(tmp_path / "b"))
    assert SYNTH_STEP not in drawn and "wrote" in drawn


def test_no_progress_goes_into_a_pipe(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "synth", "--patients", "20", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert SYNTH_STEP not in result.stdout + result.stderr
    assert "\x1b[" not in result.stdout + result.stderr
