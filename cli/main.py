"""The ``billing`` command: parse options, call the library, print.

Engine errors (``BillingError``) become a one-line message and their exit code (1; 2
for a store that is missing or empty); a refused bundle prints every input issue and
exits 2. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from billing_engine.errors import BillingError, BundleInvalid


class BillingGroup(click.Group):
    """A click group that turns engine errors into clear messages."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except BundleInvalid as exc:
            if debug:
                raise
            click.echo(exc.report(), err=True)
            sys.exit(2)
        except BillingError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=BillingGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bars (they show only on a terminal anyway; also BILLING_QUIET=1).",
)
@click.version_option(package_name="billing-engine")
def billing(debug: bool, quiet: bool) -> None:
    """Care-management billing: import a bundle, evaluate a month, explain the result."""


def _register() -> None:
    from cli import (
        cmd_close,
        cmd_demo,
        cmd_evaluate,
        cmd_fees,
        cmd_import,
        cmd_params,
        cmd_report,
        cmd_revenue,
        cmd_roi,
        cmd_serve,
        cmd_worklist,
    )

    for module in (
        cmd_import,
        cmd_evaluate,
        cmd_revenue,
        cmd_roi,
        cmd_serve,
        cmd_report,
        cmd_demo,
        cmd_fees,
        cmd_params,
        cmd_close,
        cmd_worklist,
        cmd_report,
    ):
        for command in module.COMMANDS:
            billing.add_command(command)


_register()


def main() -> None:
    billing(prog_name="billing")


if __name__ == "__main__":
    main()
