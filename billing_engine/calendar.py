"""Calendar months, business days and holidays.

Monthly programs (CCM, PCM, BHI, APCM, ...) use calendar months; TCM uses business
days (Monday to Friday, US federal holidays on their observed dates excluded) and a
30-day period. Nothing here reads the clock: every function takes its dates.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

import holidays as _holidays
import polars as pl

from billing_engine.errors import ConfigError

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        m = _MONTH_RE.match(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ConfigError(f"month must be YYYY-MM, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.year, self.month, _calendar.monthrange(self.year, self.month)[1])

    def shift(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day of month `months` later (or earlier), clipped to the month's last day."""
    target = Month.of(day).shift(months)
    return dt.date(target.year, target.month, min(day.day, target.end.day))


@lru_cache(maxsize=64)
def federal_holidays(first_year: int, last_year: int, observed: bool = True) -> tuple[dt.date, ...]:
    """US federal holidays for the years, including observed dates when `observed`."""
    years = range(first_year, last_year + 1)
    cal = _holidays.country_holidays("US", years=years, observed=observed)
    if observed:
        return tuple(sorted(cal.keys()))
    return tuple(sorted(d for d, name in cal.items() if "observed" not in name.lower()))


def is_business_day(day: dt.date, holidays: tuple[dt.date, ...]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: dt.date, n: int, holidays: tuple[dt.date, ...]) -> dt.date:
    """The n-th business day after `day` (day itself is day 0)."""
    current = day
    remaining = n
    while remaining > 0:
        current += dt.timedelta(days=1)
        if is_business_day(current, holidays):
            remaining -= 1
    return current


def add_business_days_expr(expr: pl.Expr, n: int, holidays: tuple[dt.date, ...]) -> pl.Expr:
    """Vectorised `add_business_days` for a date column.

    Polars counts from a non-business start by rolling forward first; to keep "day 0 is
    the given date, count the n business days after it" for weekend and holiday starts
    too, roll back to the previous business day and add n from there.
    """
    if n == 0:
        return expr
    rolled = expr.dt.add_business_days(0, holidays=list(holidays), roll="backward")
    return rolled.dt.add_business_days(n, holidays=list(holidays))
