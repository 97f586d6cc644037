"""CLI commands: import (placeholder until implemented)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
