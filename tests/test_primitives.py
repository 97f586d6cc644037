"""The shared primitives (billing_engine/engine/primitives.py, billing_engine/intervals.py):
properties, and agreement with the hand-written copies they replaced (docs/primitives.md)."""

from __future__ import annotations

import datetime as dt
import operator
import random
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_engine.calendar import Month
from billing_engine.engine import facts as nz
from billing_engine.engine import primitives as pr
from billing_engine.engine.context import EvalContext
from billing_engine.engine.kernel import Criterion
from billing_engine.engine.primitives import Cap, Window
from billing_engine.services.evaluation import default_parameters
from billing_engine.synth.practice import generate_practice

BASE = dt.date(2025, 1, 1)
CLOSED = ("both", "left", "right", "none")

day_offsets = st.integers(min_value=0, max_value=40)
maybe_day = st.one_of(st.none(), day_offsets)


def day(offset: int | None) -> dt.date | None:
    return None if offset is None else BASE + dt.timedelta(days=offset)


# --------------------------------------------------------------------------- Kleene reference


def k_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def k_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def cmp(a: Any, b: Any, op: Callable[[Any, Any], bool]) -> bool | None:
    return None if a is None or b is None else op(a, b)


def reference_active_on(
    d: Any, s: Any, e: Any, closed: str, open_start: bool, open_end: bool
) -> bool | None:
    lower = cmp(s, d, operator.le if closed in ("both", "left") else operator.lt)
    upper = cmp(e, d, operator.ge if closed in ("both", "right") else operator.gt)
    if open_start:
        lower = k_or(s is None, lower)
    if open_end:
        upper = k_or(e is None, upper)
    return k_and(lower, upper)


def evaluate(frame: pl.DataFrame, expr: pl.Expr) -> list[Any]:
    return frame.select(expr.alias("x")).get_column("x").to_list()


rows = st.lists(st.tuples(maybe_day, maybe_day, maybe_day), min_size=1, max_size=30)


def interval_frame(data: list[tuple[int | None, int | None, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "d": [day(d) for d, _, _ in data],
            "s": [day(s) for _, s, _ in data],
            "e": [day(e) for _, _, e in data],
        },
        schema={"d": pl.Date, "s": pl.Date, "e": pl.Date},
    )


# --------------------------------------------------------------------------- active_on


@settings(max_examples=200, deadline=None)
@given(
    data=rows,
    closed=st.sampled_from(CLOSED),
    open_start=st.booleans(),
    open_end=st.booleans(),
)
def test_active_on_agrees_with_a_plain_python_reference_including_null_bounds_and_dates(
    data: list[tuple[int | None, int | None, int | None]],
    closed: Any,
    open_start: bool,
    open_end: bool,
) -> None:
    frame = interval_frame(data)
    got = evaluate(
        frame, pr.active_on("d", "s", "e", closed=closed, open_start=open_start, open_end=open_end)
    )
    want = [
        reference_active_on(r["d"], r["s"], r["e"], closed, open_start, open_end)
        for r in frame.iter_rows(named=True)
    ]
    assert got == want


@settings(max_examples=100, deadline=None)
@given(data=rows, closed=st.sampled_from(CLOSED))
def test_active_on_without_open_bounds_is_polars_is_between_null_for_null(
    data: list[tuple[int | None, int | None, int | None]], closed: Any
) -> None:
    frame = interval_frame(data)
    got = evaluate(frame, pr.active_on("d", "s", "e", closed=closed, open_end=False))
    assert got == evaluate(frame, pl.col("d").is_between(pl.col("s"), pl.col("e"), closed=closed))


@settings(max_examples=100, deadline=None)
@given(data=rows)
def test_active_on_spells_the_coverage_and_condition_copies_value_for_value(
    data: list[tuple[int | None, int | None, int | None]],
) -> None:
    frame = interval_frame(data)
    d, s, e = pl.col("d"), pl.col("s"), pl.col("e")
    coverage_copy = (s <= d) & (e.is_null() | (e >= d))  # normalize.primary_coverage
    condition_copy = (s.is_null() | (s <= d)) & (e.is_null() | (e >= d))  # conditions_on_date
    stay_copy = (d >= s) & (d < e)  # normalize.time_entries, inpatient days
    assert evaluate(frame, pr.active_on("d", "s", "e")) == evaluate(frame, coverage_copy)
    assert evaluate(frame, pr.active_on("d", "s", "e", open_start=True)) == evaluate(
        frame, condition_copy
    )
    stay = pr.active_on("d", "s", "e", closed="left", open_end=False)
    assert evaluate(frame, stay) == evaluate(frame, stay_copy)


# --------------------------------------------------------------------------- overlaps


four = st.lists(st.tuples(maybe_day, maybe_day, maybe_day, maybe_day), min_size=1, max_size=30)


def pair_frame(data: list[tuple[int | None, ...]]) -> pl.DataFrame:
    names = ("ps", "pe", "s", "e")
    return pl.DataFrame(
        {n: [day(r[i]) for r in data] for i, n in enumerate(names)},
        schema=dict.fromkeys(names, pl.Date),
    )


def shares_a_day(ps: int, pe: int | None, s: int | None, e: int | None, closed: str) -> bool:
    """Reference over day sets (null start/end = open)."""
    far = 10_000
    first = -far if s is None else (s if closed in ("both", "left") else s + 1)
    last = far if e is None else (e if closed in ("both", "right") else e - 1)
    period_last = far if pe is None else pe
    return max(first, ps) <= min(last, period_last)


@settings(max_examples=200, deadline=None)
@given(data=four, closed=st.sampled_from(CLOSED))
def test_overlaps_agrees_with_a_reference_over_sets_of_days(
    data: list[tuple[int | None, ...]], closed: Any
) -> None:
    # well-formed intervals holding a day: the copies never check that
    data = [
        (
            ps or 0,
            pe if pe is None else max(pe, ps or 0),
            s if s is None or e is None else min(s, e),
            e if s is None or e is None else max(s, e) + (0 if closed == "both" else 2),
        )
        for ps, pe, s, e in data
    ]  # not empty: an open side needs a day more
    frame = pair_frame(data)
    expr = pr.overlaps(
        "ps", "pe", "s", "e", closed=closed, open_start=True, open_end=True, open_period_end=True
    )
    got = evaluate(frame, expr)
    want = [shares_a_day(ps, pe, s, e, closed) for ps, pe, s, e in data]  # type: ignore[arg-type]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(data=four)
def test_overlaps_is_symmetric_between_two_coverages_with_open_ends(
    data: list[tuple[int | None, ...]],
) -> None:
    data = [(ps or 0, pe, s or 0, e) for ps, pe, s, e in data]
    frame = pair_frame(data)
    one = evaluate(frame, pr.overlaps("ps", "pe", "s", "e", open_period_end=True))
    other = evaluate(frame, pr.overlaps("s", "e", "ps", "pe", open_period_end=True))
    assert one == other


@settings(max_examples=100, deadline=None)
@given(data=four)
def test_overlaps_spells_the_consent_stay_and_condition_copies_value_for_value(
    data: list[tuple[int | None, ...]],
) -> None:
    frame = pair_frame(data)
    ps, pe, s, e = pl.col("ps"), pl.col("pe"), pl.col("s"), pl.col("e")
    consent_copy = (s <= pe) & (e.is_null() | (e >= ps))  # normalize.valid_consents
    stay_copy = (s <= pe) & (e > ps)  # normalize.inpatient_days
    condition_copy = (s.is_null() | (s <= pe)) & (e.is_null() | (e >= ps))  # chronic_conditions
    assert evaluate(frame, pr.overlaps("ps", "pe", "s", "e")) == evaluate(frame, consent_copy)
    stay = pr.overlaps("ps", "pe", "s", "e", closed="left", open_end=False)
    assert evaluate(frame, stay) == evaluate(frame, stay_copy)
    condition = pr.overlaps("ps", "pe", "s", "e", open_start=True)
    assert evaluate(frame, condition) == evaluate(frame, condition_copy)


# --------------------------------------------------------------------------- criteria


def same_criterion(a: Criterion, b: Criterion) -> bool:
    def same(x: pl.Expr | None, y: pl.Expr | None) -> bool:
        return (x is None and y is None) or (x is not None and y is not None and x.meta.eq(y))

    plain = ("name", "description", "reason", "rules", "shows")
    exprs = ("met", "status", "detail", "minutes_needed", "deadline")
    return all(getattr(a, f) == getattr(b, f) for f in plain) and all(
        same(getattr(a, f), getattr(b, f)) for f in exprs
    )


def test_the_coverage_and_payer_criteria_cite_the_rule_ids_they_are_given() -> None:
    assert same_criterion(
        pr.coverage_criterion(("FEE-2",), ("date", "payer_id")),
        Criterion(
            "coverage",
            "active coverage on the date of service",
            pl.col("payer_id").is_not_null(),
            "coverage_missing",
            ("FEE-2",),
            shows=("date", "payer_id"),
        ),
    )
    assert same_criterion(
        pr.payer_pays_criterion("X1", ("TCODE-1",)),
        Criterion(
            "payer_pays",
            "the payer pays this code",
            pl.col("pays:X1"),
            "payer_not_covered",
            ("TCODE-1",),
            shows=("payer_id", "payer_kind"),
        ),
    )
    assert pr.coverage_criterion(("CCM-B1",)).rules == ("CCM-B1",)
    assert pr.payer_pays_criterion("X1", ("TOB-$",)).rules == ("TOB-$",)


def test_the_billing_practitioner_factories_rebuild_the_ccm_medicaid_mnt_and_tcm_copies() -> None:
    billers = ["MD", "DO", "NP"]
    ccm_known = Criterion(
        "billing_practitioner_known",
        "the time is billed under a known billing practitioner",
        pl.col("billing_practitioner_id").is_not_null(),
        "practitioner_not_qualified",
        ("CCM-B1",),
        detail=pl.lit(
            "no billing practitioner: set billing_practitioner_id or name one on the consent"
        ),
        shows=("billing_practitioner_id",),
    )
    assert same_criterion(
        pr.billing_practitioner_known_criterion(
            ("CCM-B1",),
            "no billing practitioner: set billing_practitioner_id or name one on the consent",
        ),
        ccm_known,
    )
    ccm_qualified = Criterion(
        "billing_practitioner_qualified",
        "the billing practitioner is a physician or NPP who may bill CCM",
        pl.col("bp_credential").is_in(billers),
        "practitioner_not_qualified",
        ("CCM-B1",),
        shows=("bp_credential",),
    )
    assert same_criterion(
        pr.billing_practitioner_qualified_criterion(
            ("CCM-B1",), billers, "the billing practitioner is a physician or NPP who may bill CCM"
        ),
        ccm_qualified,
    )
    medicaid = Criterion(
        "billing_practitioner_qualified",
        "the billing practitioner's credential may bill the state's T-code",
        pl.col("billing_credentials").list.contains(pl.col("bp_credential")),
        "practitioner_not_qualified",
        ("TCODE-2",),
        shows=("bp_credential", "state_key"),
    )
    assert same_criterion(
        pr.billing_practitioner_qualified_criterion(
            ("TCODE-2",),
            pl.col("billing_credentials"),
            "the billing practitioner's credential may bill the state's T-code",
            shows=("bp_credential", "state_key"),
        ),
        medicaid,
    )
    mnt_detail = pl.format("{} ({})", pl.col("billing_practitioner_id"), pl.col("bp_credential"))
    mnt = Criterion(
        "billing_practitioner_qualified",
        "the billing practitioner is a registered dietitian with an NPI",
        pl.col("bp_credential").is_in(["RD"]) & pl.col("bp_npi").is_not_null(),
        "practitioner_not_qualified",
        ("MNT-S1",),
        detail=mnt_detail,
        shows=("billing_practitioner_id", "bp_credential", "bp_npi"),
    )
    assert same_criterion(
        pr.billing_practitioner_qualified_criterion(
            ("MNT-S1",),
            ["RD"],
            "the billing practitioner is a registered dietitian with an NPI",
            require_npi=True,
            detail=mnt_detail,
            shows=("billing_practitioner_id", "bp_credential", "bp_npi"),
        ),
        mnt,
    )
    no_visit = pl.col("f2f_date").is_null()
    tcm = Criterion(
        "billing_practitioner_qualified",
        "the face-to-face visit is billed under a physician or NPP",
        no_visit | pl.col("bp_credential").is_in(billers),
        "practitioner_not_qualified",
        ("TCM-S1",),
        shows=("billing_practitioner_id", "bp_credential"),
    )
    assert same_criterion(
        pr.billing_practitioner_qualified_criterion(
            ("TCM-S1",),
            billers,
            "the face-to-face visit is billed under a physician or NPP",
            waived=no_visit,
            shows=("billing_practitioner_id", "bp_credential"),
        ),
        tcm,
    )


def test_the_not_already_billed_factory_rebuilds_the_ccm_add_on_copy_without_rule_ids() -> None:
    copy = Criterion(
        "not_already_billed",
        "this code is not already billed for the month (claims history)",
        ~pl.col("own_claim_codes").list.contains("X2"),
        "already_billed",
    )
    made = pr.not_already_billed_criterion(
        ~pl.col("own_claim_codes").list.contains("X2"),
        "this code is not already billed for the month (claims history)",
    )
    assert same_criterion(made, copy)


# --------------------------------------------------------------------------- frequency cap

candidate_rows = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", "P3"]),  # group
        st.integers(min_value=0, max_value=60),  # day
        st.integers(min_value=0, max_value=3),  # units
        st.booleans(),  # qualifies
    ),
    min_size=0,
    max_size=25,
)


def candidate_frame(data: list[tuple[str, int, int, bool]], prior: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"E{i:03d}" for i in range(len(data))],
            "patient_id": [g for g, _, _, _ in data],
            "date": [BASE + dt.timedelta(days=d) for _, d, _, _ in data],
            "units": [u for _, _, u, _ in data],
            "ok": [q for _, _, _, q in data],
            "prior": [prior.get(g, 0) for g, _, _, _ in data],
        },
        schema={
            "id": pl.String,
            "patient_id": pl.String,
            "date": pl.Date,
            "units": pl.Int64,
            "ok": pl.Boolean,
            "prior": pl.Int64,
        },
    )


def reference_qualifying(frame: pl.DataFrame, limit: int | None) -> dict[str, dict[str, Any]]:
    """Ordered by (patient, date, id): earlier qualifying candidates use their units."""
    out: dict[str, dict[str, Any]] = {}
    used: dict[str, int] = {}
    ranks: dict[str, int] = {}
    for r in sorted(
        frame.iter_rows(named=True), key=lambda r: (r["patient_id"], r["date"], r["id"])
    ):
        g = r["patient_id"]
        earlier = used.get(g, 0)
        ranks[g] = ranks.get(g, 0) + 1
        demand = r["units"] if r["ok"] else 0
        room = None if limit is None else max(limit - r["prior"], 0)
        granted = demand if room is None else min(earlier + demand, room) - min(earlier, room)
        out[r["id"]] = {
            "cap_rank": ranks[g],
            "cap_earlier": earlier,
            "cap_used": r["prior"] + earlier,
            "cap_room": room,
            "cap_within": room is None or earlier < room,
            "cap_granted": granted,
        }
        used[g] = earlier + demand
    return out


def run_cap(frame: pl.DataFrame, limit: int | None, **kwargs: Any) -> pl.DataFrame:
    return pr.frequency_cap(
        frame,
        [Cap("cap", limit, prior="prior", window=kwargs.pop("window", Window()))],
        group=("patient_id",),
        order=("date", "id"),
        units=kwargs.pop("units", "units"),
        qualifies=pl.col("ok"),
        **kwargs,
    )


priors = st.dictionaries(st.sampled_from(["P1", "P2", "P3"]), st.integers(0, 4))
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=6))


@settings(max_examples=150, deadline=None)
@given(data=candidate_rows, prior=priors, limit=limits)
def test_frequency_cap_counting_qualifying_agrees_with_a_python_reference(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int], limit: int | None
) -> None:
    frame = candidate_frame(data, prior)
    got = run_cap(frame, limit)
    assert got.get_column("id").to_list() == frame.get_column("id").to_list()  # input order
    want = reference_qualifying(frame, limit)
    for row in got.iter_rows(named=True):
        assert {k: row[k] for k in want[row["id"]]} == want[row["id"]]


@settings(max_examples=150, deadline=None)
@given(data=candidate_rows, prior=priors, limit=st.integers(min_value=0, max_value=6))
def test_frequency_cap_never_grants_more_than_the_limit_less_prior_usage(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int], limit: int
) -> None:
    frame = candidate_frame(data, prior)
    got = run_cap(frame, limit)
    per_group = got.group_by("patient_id").agg(
        granted=pl.col("cap_granted").sum(),
        whole=(pl.col("ok") & pl.col("cap_within") & (pl.col("units") > 0)).sum(),
        prior=pl.col("prior").first(),
    )
    for row in per_group.iter_rows(named=True):
        room = max(limit - row["prior"], 0)
        assert row["granted"] <= room
        assert row["whole"] <= room  # each within candidate uses at least one unit
    ones = run_cap(frame, limit, units=None)  # one unit each: sessions
    counted = ones.filter(pl.col("ok") & pl.col("cap_within")).group_by("patient_id").len()
    for g, n in counted.iter_rows():
        assert n <= max(limit - prior.get(g, 0), 0)


@settings(max_examples=100, deadline=None)
@given(data=candidate_rows, prior=priors, limit=limits, seed=st.integers(0, 1000))
def test_frequency_cap_results_do_not_depend_on_the_input_row_order(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int], limit: int | None, seed: int
) -> None:
    frame = candidate_frame(data, prior)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    for counting in ("qualifying", "granted"):
        a = run_cap(frame, limit, counting=counting).sort("id")
        b = run_cap(shuffled, limit, counting=counting).sort("id")
        assert a.equals(b)


@settings(max_examples=100, deadline=None)
@given(data=candidate_rows, prior=priors)
def test_frequency_cap_ranks_are_ordinal_one_to_n_within_each_group(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int]
) -> None:
    got = run_cap(candidate_frame(data, prior), 1, keep_order="sorted")
    for _, part in got.group_by("patient_id"):
        assert part.get_column("cap_rank").to_list() == list(range(1, part.height + 1))
        dates = part.get_column("date").to_list()
        assert dates == sorted(dates)


def reference_granted(frame: pl.DataFrame, limit: int, days: int) -> dict[str, bool]:
    """Greedy in order: a candidate is granted when it qualifies and the granted units of
    earlier candidates dated in the `days` days before it leave room under the limit."""
    out: dict[str, bool] = {}
    done: list[tuple[str, dt.date, int]] = []
    for r in sorted(
        frame.iter_rows(named=True), key=lambda r: (r["patient_id"], r["date"], r["id"])
    ):
        earlier = sum(
            u
            for g, d, u in done
            if g == r["patient_id"] and r["date"] - dt.timedelta(days=days) <= d <= r["date"]
        )
        room = max(limit - r["prior"], 0)
        ok = bool(r["ok"]) and earlier < room
        out[r["id"]] = ok
        if ok:
            done.append((r["patient_id"], r["date"], r["units"]))
    return out


@settings(max_examples=150, deadline=None)
@given(
    data=candidate_rows,
    prior=priors,
    limit=st.integers(min_value=0, max_value=4),
    days=st.integers(min_value=0, max_value=30),
)
def test_frequency_cap_counting_granted_agrees_with_a_greedy_reference_in_a_rolling_window(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int], limit: int, days: int
) -> None:
    frame = candidate_frame(data, prior)
    got = run_cap(frame, limit, counting="granted", window=Window.days_back("date", days))
    want = reference_granted(frame, limit, days)
    assert dict(zip(got["id"], got["cap_granted"], strict=True)) == want


def test_frequency_cap_ties_in_the_order_keep_the_input_order_like_an_ordinal_rank() -> None:
    frame = pl.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P1"],
            "date": [BASE, BASE, BASE, BASE - dt.timedelta(days=1)],
            "id": ["B", "A", "C", "D"],
        }
    )
    got = pr.frequency_cap(frame, [Cap("cap", 1)], group=("patient_id",), order=("date",))
    copy = frame.select(pl.col("date").rank("ordinal").over("patient_id") - 1)  # ccm g0506
    assert got.get_column("cap_earlier").to_list() == copy.to_series().cast(pl.Int64).to_list()


@settings(max_examples=100, deadline=None)
@given(data=candidate_rows, prior=priors, day_cap=limits, month_cap=limits)
def test_frequency_cap_reproduces_the_medicaid_daily_and_monthly_greedy_unit_fill(
    data: list[tuple[str, int, int, bool]],
    prior: dict[str, int],
    day_cap: int | None,
    month_cap: int | None,
) -> None:
    from tests.medicaid_copies import _greedy

    frame = candidate_frame(data, prior).with_columns(
        program=pl.lit("cm"),
        day_max=pl.lit(day_cap, dtype=pl.Int64),
        month_max=pl.lit(month_cap, dtype=pl.Int64),
        claimed_day=(pl.col("prior") // 2).cast(pl.Int64),
        claimed_month=pl.col("prior"),
    )
    # the copy (medicaid daily_facts), with `id` standing for billing_practitioner_id
    copy = frame.sort("patient_id", "program", "date", "id").with_columns(
        day_cap_left=(pl.col("day_max") - pl.col("claimed_day")).clip(lower_bound=0),
        month_cap_left=(pl.col("month_max") - pl.col("claimed_month")).clip(lower_bound=0),
        ready_units=pl.when(pl.col("ok")).then(pl.col("units")).otherwise(0),
    )
    before, units = _greedy(
        pl.col("ready_units"), pl.col("day_cap_left"), ["patient_id", "program", "date"]
    )
    copy = copy.with_columns(units_day_before=before, day_units=units)
    before, units = _greedy(
        pl.col("day_units"), pl.col("month_cap_left"), ["patient_id", "program"]
    )
    copy = copy.with_columns(units_month_before=before, units=units)

    day_pass = pr.frequency_cap(
        frame,
        [Cap("day", pl.col("day_max"), prior="claimed_day")],
        group=("patient_id", "program", "date"),
        order=("id",),
        units="units",
        qualifies=pl.col("ok"),
        keep_order="sorted",
    )
    both = pr.frequency_cap(
        day_pass,
        [Cap("month", pl.col("month_max"), prior="claimed_month")],
        group=("patient_id", "program"),
        order=("date", "id"),
        units="day_granted",
        keep_order="sorted",
    )
    assert both["id"].to_list() == copy["id"].to_list()
    for mine, theirs in (
        ("day_room", "day_cap_left"),
        ("day_earlier", "units_day_before"),
        ("day_granted", "day_units"),
        ("month_room", "month_cap_left"),
        ("month_earlier", "units_month_before"),
        ("month_granted", "units"),
    ):
        assert both[mine].to_list() == copy[theirs].cast(pl.Int64).to_list(), mine
    daily_cap_met = copy.select(
        pl.col("day_cap_left").is_null() | (pl.col("units_day_before") < pl.col("day_cap_left"))
    ).to_series()
    assert both["day_within"].to_list() == daily_cap_met.to_list()


@settings(max_examples=100, deadline=None)
@given(data=candidate_rows, prior=priors, limit=st.integers(min_value=0, max_value=4))
def test_frequency_cap_reproduces_the_tobacco_and_nurse_visit_earlier_qualifying_counts(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int], limit: int
) -> None:
    frame = candidate_frame(data, prior)
    # tobacco._with_earlier_sessions / nurse_visit._with_earlier_qualifying
    copy = (
        frame.with_columns(_qualifies=pl.col("ok").cast(pl.Int64))
        .sort("patient_id", "date", "id")
        .with_columns(
            earlier_sessions=(pl.col("_qualifies").cum_sum() - pl.col("_qualifies")).over(
                "patient_id"
            )
        )
        .drop("_qualifies")
    )
    got = pr.frequency_cap(
        frame,
        [Cap("cap", limit, prior="prior")],
        group=("patient_id",),
        order=("date", "id"),
        qualifies=pl.col("ok"),
        keep_order="sorted",
    )
    assert got.select(frame.columns).equals(copy.drop("earlier_sessions"))
    assert got["cap_earlier"].to_list() == copy["earlier_sessions"].to_list()
    limit_met = copy.select((pl.col("prior") + pl.col("earlier_sessions")) < limit).to_series()
    assert got["cap_within"].to_list() == limit_met.to_list()


@settings(max_examples=100, deadline=None)
@given(data=candidate_rows, prior=priors)
def test_prior_usage_counts_the_units_of_services_inside_each_candidates_window(
    data: list[tuple[str, int, int, bool]], prior: dict[str, int]
) -> None:
    frame = candidate_frame(data, prior)
    services = frame.select(
        "patient_id", pl.col("date").alias("date_of_service"), pl.col("units").alias("n")
    )
    window = Window.days_back("date", 7, closed="left")
    got = pr.prior_usage(frame, services, on=("patient_id",), window=window, units="n")
    rows = frame.iter_rows(named=True)
    want = [
        sum(
            s["n"]
            for s in services.iter_rows(named=True)
            if s["patient_id"] == r["patient_id"]
            and r["date"] - dt.timedelta(days=7) <= s["date_of_service"] < r["date"]
        )
        for r in rows
    ]
    assert got.dtype == pl.Int64
    assert got.to_list() == want
    other_days = pr.prior_usage(
        frame, services, on=("patient_id",), window=Window.lifetime(other_days_only=True)
    )
    assert other_days.to_list() == [
        sum(1 for s in services.iter_rows(named=True) if s["patient_id"] == r["patient_id"]
            and s["date_of_service"] != r["date"])
        for r in frame.iter_rows(named=True)
    ]  # fmt: skip


def test_prior_usage_reproduces_the_tobacco_claims_in_the_window_before_the_session() -> None:
    sessions = pl.DataFrame(
        {
            "encounter_id": ["E1", "E2", "E3"],
            "patient_id": ["P1", "P1", "P2"],
            "date": [dt.date(2025, 3, 10), dt.date(2025, 3, 20), dt.date(2025, 3, 5)],
        }
    )
    claims = pl.DataFrame(
        {
            "patient_id": ["P1", "P1", "P1", "P2"],
            "claim_date": [
                dt.date(2024, 3, 10),
                dt.date(2024, 3, 11),
                dt.date(2025, 3, 10),
                dt.date(2025, 1, 2),
            ],
            "units": [1, 2, 1, 1],
        }
    )
    facts = sessions.with_columns(
        window_start=pl.col("date").dt.offset_by("-12mo").dt.offset_by("1d")
    )
    # the copy: tobacco._with_claims' prior_sessions
    joined = facts.join(claims, on="patient_id", how="inner").filter(
        (pl.col("claim_date") >= pl.col("window_start")) & (pl.col("claim_date") <= pl.col("date"))
    )
    summary = joined.group_by("encounter_id").agg(
        prior_sessions=pl.col("units").filter(pl.col("claim_date") < pl.col("date")).sum()
    )
    copy = facts.join(summary, on="encounter_id", how="left").with_columns(
        pl.col("prior_sessions").fill_null(0).cast(pl.Int64)
    )
    got = pr.prior_usage(
        facts,
        claims,
        on=("patient_id",),
        window=Window.months_back("date", 12, closed="left"),
        service_date="claim_date",
        units="units",
    )
    assert got.to_list() == copy["prior_sessions"].to_list() == [2, 1, 1]


# --------------------------------------------------------------------------- coverage


@pytest.fixture(scope="module")
def ctx() -> EvalContext:
    month = Month.parse("2025-11")
    period = default_parameters().for_period(month.start, month.end, None)
    bundle = generate_practice(300, seed=11).without_entered_in_error()
    return EvalContext(bundle=bundle, month=month, as_of=month.end, params=period)


def dated_rows(ctx: EvalContext) -> pl.DataFrame:
    """Every encounter's patient and date, plus dates before and after any coverage."""
    enc = ctx.bundle["encounters"].select("patient_id", "date", "encounter_id")
    shifted = enc.with_columns(pl.col("date").dt.offset_by("-3y"))
    rows = pl.concat([enc, shifted]).with_row_index("n")
    order = list(range(rows.height))
    random.Random(3).shuffle(order)
    return rows.with_columns(pl.Series("o", order)).sort("o").drop("o")


def test_coverage_on_is_normalize_primary_coverage_frame_for_frame(ctx: EvalContext) -> None:
    frame = dated_rows(ctx)
    assert frame.height > 1000
    got = pr.coverage_on(ctx, frame, "date")
    assert got.equals(nz.primary_coverage(ctx, frame, "date"))
    assert got.get_column("payer_id").null_count() > 0  # dates outside every coverage


def test_coverage_on_with_state_is_the_medicaid_nursing_join_frame_for_frame(
    ctx: EvalContext,
) -> None:
    frame = dated_rows(ctx)
    copy = nz.primary_coverage(ctx, frame, "date").join(
        ctx.bundle["payers"].select("payer_id", pl.col("state").alias("payer_state")),
        on="payer_id",
        how="left",
    )
    assert pr.coverage_on(ctx, frame, "date", with_state=True).equals(copy)


def test_coverage_on_preferring_payer_kinds_is_the_medicaid_t_code_payer(ctx: EvalContext) -> None:
    from tests.medicaid_copies import with_medicaid_payer

    frame = dated_rows(ctx)
    kinds = ctx.params.as_strs("medicaid.paying_payer_kinds")
    got = pr.coverage_on(ctx, frame, "date", prefer_kinds=kinds, with_state=True)
    assert got.equals(with_medicaid_payer(ctx, frame, "date"))


def test_with_payer_pays_is_the_loop_every_family_wrote(ctx: EvalContext) -> None:
    from code_rules.medicaid.state_table import case_codes
    from tests.medicaid_copies import with_pays

    frame = nz.primary_coverage(ctx, dated_rows(ctx), "date")
    codes = case_codes(ctx)
    assert pr.with_payer_pays(
        ctx, frame, codes, "date", ctx.params.as_strs("medicaid.paying_payer_kinds")
    ).equals(with_pays(ctx, frame, codes, "date"))
    kinds = ctx.params.as_strs("common.payer_kinds_paying_by_default")
    loop = frame
    for code in codes:
        shown = loop.with_columns(_code=pl.lit(code))
        loop = loop.with_columns(
            nz.payer_pays(ctx, shown, "_code", "date", kinds).alias(f"pays:{code}")
        )
    assert pr.with_payer_pays(ctx, frame, codes, "date").equals(loop)


def tcm_fixed_point(discharges: pl.DataFrame, period_days: int) -> set[str]:
    """The copy: tcm._with_periods_billed's blocked discharges (its fixed point)."""
    pairs = (
        discharges.select("discharge_id", "patient_id", "discharge_date")
        .join(
            discharges.select(
                "patient_id",
                pl.col("discharge_id").alias("earlier_id"),
                pl.col("discharge_date").alias("earlier_date"),
            ),
            on="patient_id",
            how="inner",
        )
        .filter(
            (pl.col("earlier_date") < pl.col("discharge_date"))
            & (
                pl.col("discharge_date")
                <= pl.col("earlier_date") + pl.duration(days=period_days - 1)
            )
        )
        .select("discharge_id", "earlier_id")
    )
    blocked = discharges.select("discharge_id", blocked=pl.lit(False))
    for _ in range(discharges.height + 1):
        starts = discharges.join(blocked, on="discharge_id").filter(
            pl.col("would") & ~pl.col("blocked")
        )
        effective = pairs.join(
            starts.select(pl.col("discharge_id").alias("earlier_id")), on="earlier_id"
        )
        now = (
            discharges.select("discharge_id")
            .join(
                effective.select("discharge_id").unique().with_columns(hit=pl.lit(True)),
                on="discharge_id",
                how="left",
            )
            .select("discharge_id", blocked=pl.col("hit").fill_null(False))
        )
        if now.equals(blocked):
            break
        blocked = now
    return set(blocked.filter(pl.col("blocked"))["discharge_id"])


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.sampled_from(["P1", "P2"]), st.integers(0, 120), st.booleans()),
        max_size=15,
    ),
    period_days=st.integers(min_value=1, max_value=40),
)
def test_frequency_cap_counting_granted_is_the_tcm_one_per_period_fixed_point(
    data: list[tuple[str, int, bool]], period_days: int
) -> None:
    discharges = pl.DataFrame(
        {
            "discharge_id": [f"D{i:02d}" for i in range(len(data))],
            "patient_id": [p for p, _, _ in data],
            "discharge_date": [BASE + dt.timedelta(days=d) for _, d, _ in data],
            "would": [w for _, _, w in data],
        },
        schema={
            "discharge_id": pl.String,
            "patient_id": pl.String,
            "discharge_date": pl.Date,
            "would": pl.Boolean,
        },
    )
    window = Window.days_back("discharge_date", period_days - 1, closed="left")
    got = pr.frequency_cap(
        discharges,
        [Cap("period", 1, window=window)],
        group=("patient_id",),
        order=("discharge_date", "discharge_id"),
        qualifies=pl.col("would"),
        counting="granted",
        date="discharge_date",
    )
    blocked = set(got.filter(~pl.col("period_within"))["discharge_id"])
    assert blocked == tcm_fixed_point(discharges, period_days)


_INTERVALS = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", None]),
        st.integers(min_value=1, max_value=3),
        st.integers(min_value=0, max_value=1_439),
        st.integers(min_value=0, max_value=240),
    ),
    max_size=40,
)


def _union_reference(rows: list[tuple[str | None, int, int, int]]) -> set[tuple[Any, ...]]:
    """Merged [start, end) intervals per (patient, day), the plain way: sort, sweep."""
    merged: set[tuple[Any, ...]] = set()
    by_key: dict[tuple[str | None, int], list[tuple[int, int]]] = {}
    for patient, day, start, minutes in rows:
        by_key.setdefault((patient, day), []).append((start, start + minutes))
    for key, spans in by_key.items():
        spans.sort()
        low, high = spans[0]
        for start, end in spans[1:]:
            if start > high:
                merged.add((*key, low, high))
                low, high = start, end
            else:
                high = max(high, end)
        merged.add((*key, low, high))
    return merged


@settings(max_examples=200, deadline=None)
@given(_INTERVALS)
def test_merge_intervals_gives_each_keys_union_as_a_plain_sweep_does(
    rows: list[tuple[str | None, int, int, int]],
) -> None:
    frame = pl.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "day": [r[1] for r in rows],
            "start_min": [r[2] for r in rows],
            "end_min": [r[2] + r[3] for r in rows],
        },
        schema={
            "patient_id": pl.String,
            "day": pl.Int64,
            "start_min": pl.Int32,
            "end_min": pl.Int32,
        },
    )
    merged = nz.merge_intervals(frame, ["patient_id", "day"])
    assert merged.get_column("piece").n_unique() == merged.height
    assert set(merged.drop("piece").iter_rows()) == _union_reference(rows)
    assert merged.schema["start_min"] == pl.Int32 and merged.schema["end_min"] == pl.Int32
