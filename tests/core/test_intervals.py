"""The pure interval rules: folding reads one at a time equals the single path's queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core import intervals as rules

T0 = datetime(2026, 5, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
RULES = rules.MeterRules(
    modulus=Decimal(1_000_000), max_demand=Decimal(25), expected=Q, multiplier=1
)


def p(minutes: int, total: str, key: object = None) -> rules.Point:
    return rules.Point(T0 + timedelta(minutes=minutes), Decimal(total), key)


def test_statuses() -> None:
    history, first = rules.derive(RULES, rules.MeterHistory(), p(0, "100.00", 1))
    assert first is None
    history, ok = rules.derive(RULES, history, p(15, "101.25", 2))
    assert ok is not None and (ok.status, ok.consumption, ok.booked) == (
        "ok",
        Decimal("1.25"),
        True,
    )
    _, gap = rules.derive(RULES, history, p(60, "102.00", 3))
    assert gap is not None and gap.status == "gap" and gap.booked
    _, spike = rules.derive(RULES, history, p(30, "200.00", 3))
    assert spike is not None and spike.status == "spike" and not spike.booked
    _, negative = rules.derive(RULES, history, p(30, "50.00", 3))
    assert negative is not None and negative.status == "negative" and not negative.booked


def test_rollover_and_multiplier() -> None:
    ct = rules.MeterRules(Decimal(1_000_000), Decimal(25), Q, multiplier=40)
    history, _ = rules.derive(ct, rules.MeterHistory(), p(0, "999999.50", 1))
    _, rolled = rules.derive(ct, history, p(15, "0.70", 2))
    assert rolled is not None and rolled.status == "rollover" and rolled.booked
    assert (rolled.register_delta, rolled.consumption) == (Decimal("1.2000"), Decimal("48.0000"))


def test_glitch_is_no_baseline_and_an_agreeing_read_accepts_the_jump() -> None:
    history, _ = rules.derive(RULES, rules.MeterHistory(), p(0, "100", 1))
    history, glitch = rules.derive(RULES, history, p(15, "5000", 2))
    assert glitch is not None and glitch.status == "spike"
    assert history.good is not None and history.good.key == 1
    _, back = rules.derive(RULES, history, p(30, "101", 3))
    assert back is not None and back.start.key == 1 and back.booked  # a gap: 30 min
    _, agrees = rules.derive(RULES, history, p(30, "5001", 3))
    assert agrees is not None and agrees.start.key == 2
    assert agrees.note == "follows an accepted jump" and agrees.booked


def test_a_late_read_derives_nothing_but_is_a_baseline() -> None:
    history, _ = rules.derive(RULES, rules.MeterHistory(), p(0, "100", 1))
    history, _ = rules.derive(RULES, history, p(30, "9000", 2))  # spike: not good
    history, late = rules.derive(RULES, history, p(15, "100.5", 3))
    assert late is None and history.good is not None and history.good.key == 3
    assert history.newest is not None and history.newest.key == 2


# --- property: the fold equals what the single path asks the database --------------------


def reference(
    rules_: rules.MeterRules,
    stored: list[tuple[rules.Point, rules.Derived | None]],
    read: rules.Point,
) -> rules.Derived | None:
    """The single path's queries over everything stored so far, spelled out."""
    if any(s.read_at > read.read_at for s, _ in stored):
        return None  # a late arrival
    earlier = [(s, d) for s, d in stored if s.read_at < read.read_at]
    if not earlier:
        return None
    previous = max(earlier, key=lambda e: e[0].read_at)[0]
    good = [s for s, d in earlier if d is None or d.booked]
    baseline = max(good, key=lambda s: s.read_at) if good else None
    return rules.interval_between(rules_, previous, baseline, read)


reads = st.lists(
    st.tuples(
        st.integers(0, 24 * 60),  # minutes after T0
        st.one_of(
            st.integers(0, 400),  # small steps (centi-kWh)
            st.integers(-300, -1),  # register falls
            st.integers(5_000, 2_000_000),  # spikes
        ),
        st.booleans(),  # near the top of the register (rollovers)
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(reads, st.integers(1, 200), st.sampled_from([Q, timedelta(hours=1)]))
def test_fold_equals_the_database_queries(
    steps: list[tuple[int, int, bool]], multiplier: int, expected: timedelta
) -> None:
    meter = rules.MeterRules(Decimal(1_000_000), Decimal(25), expected, multiplier)
    stored: list[tuple[rules.Point, rules.Derived | None]] = []
    history = rules.MeterHistory()
    total = Decimal("500.00")
    seen: set[datetime] = set()
    for index, (minutes, step, high) in enumerate(steps):
        at = T0 + timedelta(minutes=minutes)
        if at in seen:
            continue  # a repeat of a stored moment is a no-op on both paths
        seen.add(at)
        total = (Decimal("999990.00") if high else total) + Decimal(step) / 100
        total = total % Decimal(1_000_000) if total >= 0 else Decimal(0)
        read = rules.Point(at, total, index)
        expected_interval = reference(meter, stored, read)
        history, derived = rules.derive(meter, history, read)
        assert derived == expected_interval
        stored.append((read, derived))


def test_boundaries_are_exact_to_the_microsecond_and_the_last_decimal() -> None:
    start = p(0, "100.0000")
    at_gap = T0 + Q * 3 / 2  # 22.5 minutes: exactly 1.5 x the expected interval
    assert rules.judge(RULES, start, rules.Point(at_gap, Decimal("100.1"))).status == "ok"
    later = at_gap + timedelta(microseconds=1)
    assert rules.judge(RULES, start, rules.Point(later, Decimal("100.1"))).status == "gap"
    # 25 kW for 15 minutes is 6.25 kWh, plus the 0.02 allowance: 6.27 is plausible, 6.2701 not
    end = T0 + Q
    assert rules.judge(RULES, start, rules.Point(end, Decimal("106.2700"))).status == "ok"
    assert rules.judge(RULES, start, rules.Point(end, Decimal("106.2701"))).status == "spike"
    # a third of a second: a limit with no finite decimal expansion, still decided exactly
    third = timedelta(microseconds=333_333)
    limit = Decimal(25) * 333_333 / 3_600_000_000 + Decimal("0.02")
    below = (Decimal(100) + limit).quantize(Decimal("0.0001"), rounding="ROUND_FLOOR")
    assert rules.judge(RULES, start, rules.Point(T0 + third, below)).status == "ok"
    above = below + Decimal("0.0001")
    assert rules.judge(RULES, start, rules.Point(T0 + third, above)).status == "spike"
