"""Exceptions for configuration and programming errors.

Data problems in a bundle are not exceptions inside the engine: they become issue rows
(see ``billing_engine.io.ingest``) or gaps. ``BundleInvalid`` carries those issue rows to
the CLI when a bundle cannot be accepted at all.
"""

from __future__ import annotations

from dataclasses import dataclass


class BillingError(Exception):
    """Base class: the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(BillingError):
    """A parameter file, setting or value set is wrong or missing."""


class StoreMissing(ConfigError):
    """The store to read does not exist or holds nothing to evaluate (exit code 2).

    Reading commands (evaluate, explain, revenue) refuse it; they never create a store.
    """

    exit_code = 2


class ParameterNotVerified(ConfigError):
    """A parameter was asked for a date outside the range its values were verified for."""

    def __init__(self, parameter: str, on: object, verified: str) -> None:
        self.parameter = parameter
        self.on = on
        super().__init__(
            f"parameter {parameter!r} is not verified for {on} ({verified}); "
            "add a dated value with its source before evaluating this period"
        )


@dataclass(frozen=True, repr=False)
class InputIssue:
    """One problem found in an input bundle, located to file, row and column.

    ``phi`` marks a cell of a PHI column (schema ``Column.phi``): its value is never
    printed (``str`` and ``repr`` leave it out), only its row and column.
    """

    file: str
    row: int | None  # 1-based row as a spreadsheet shows it (header = row 1); None = whole file
    column: str | None
    problem: str
    value: str | None = None
    phi: bool = False

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column}"
        shown = f" (value {self.value!r})" if self.value not in (None, "") and not self.phi else ""
        return f"{where}: {self.problem}{shown}"

    def __repr__(self) -> str:
        value = "<PHI, not shown>" if self.phi else repr(self.value)
        return (
            f"InputIssue(file={self.file!r}, row={self.row!r}, column={self.column!r}, "
            f"problem={self.problem!r}, value={value})"
        )


class BundleInvalid(BillingError):
    """The bundle was refused as a whole; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: list[InputIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: {len(issues)} input error(s); nothing was imported")

    def report(self) -> str:
        lines = [str(self)]
        lines.extend(f"  {issue}" for issue in self.issues)
        return "\n".join(lines)


class FeeFileError(BillingError):
    """A CMS fee file (RVU or GPCI) cannot be read; names the file, line and column."""

    def __init__(
        self,
        file: str,
        line: int | None,
        column: str | None,
        problem: str,
        value: str | None = None,
    ) -> None:
        self.file = file
        self.line = line  # 1-based line as a spreadsheet shows it; None = the whole file
        self.column = column
        self.problem = problem
        self.value = value
        where = file
        if line is not None:
            where += f", line {line}"
        if column:
            where += f", column {column}"
        shown = f" (value {value!r})" if value not in (None, "") else ""
        super().__init__(f"{where}: {problem}{shown}")
