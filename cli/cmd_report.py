"""``billing report``: the reports made for people (the close report page)."""

from __future__ import annotations

import click

from cli.cmd_report_html import html_command


@click.group("report")
def report_group() -> None:
    """Reports for people: ``html``, the month's close report."""


report_group.add_command(html_command)

COMMANDS: list[click.Command] = [report_group]
