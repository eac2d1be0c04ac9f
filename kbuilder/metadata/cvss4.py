"""CVSS v4.0 scores: the specification's MacroVector method.

CVSS v4.0 has no closed-form equation. The specification (section 8,
"CVSS v4.0 Scoring") groups the metrics into six equivalence sets (EQ1-EQ6);
every combination of their levels is a MacroVector with a score in FIRST's
lookup table, and a vector is scored by interpolating down from its
MacroVector's score by how far the vector is from the MacroVector's highest
severity vectors. The lookup table, the highest-severity vectors and the
depths below are the data of FIRST's reference calculator
(github.com/FIRSTdotorg/cvss-v4-calculator), which the specification names as
the normative implementation.

The arithmetic follows the reference calculator step by step in binary
floating point (its metric level distances are 0.1 steps), because v4.0
scores are what that calculator produces; its final rounding is half up to
one decimal after lifting the value by 1e-6, which makes a float result one
ulp below an x.x5 tie round up as the exact value would. Calculators from
before that fix (November 2024) give 0.1 less for 522 of the 104,976 base
vectors (e.g. CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:H/VI:L/VA:N/SC:H/SI:H/SA:H:
8.6 now, 8.5 then).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbuilder.metadata.cvss import CvssVector

BASE_METRICS = ("AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA")


def _lookup_table() -> dict[str, float]:
    """MacroVector (EQ1..EQ6 levels, 0 = most severe) -> score.

    Each row is one (EQ1, EQ2, EQ3); its values run over EQ4 0..2, then EQ5
    0..2, then EQ6 0..1 (EQ3 = 2 only exists with EQ6 = 1, so those rows
    have nine values).
    """
    rows = {
        "000": "10 9.9 9.8 9.5 9.5 9.2  10 9.6 9.3 8.7 9.1 8.1  9.3 9.0 8.9 8.0 8.1 6.8",
        "001": "9.8 9.5 9.5 9.2 9.0 8.4  9.3 9.2 8.9 8.1 8.1 6.5  8.8 8.0 7.8 7.0 6.9 4.8",
        "002": "9.2 8.2 7.2  7.9 6.9 5.0  6.9 5.5 2.7",
        "010": "9.9 9.7 9.5 9.2 9.2 8.5  9.5 9.1 9.0 8.3 8.4 7.1  9.2 8.1 8.2 7.1 7.2 5.3",
        "011": "9.5 9.3 9.2 8.5 8.5 7.3  9.2 8.2 8.0 7.2 7.0 5.9  8.4 7.0 7.1 5.2 5.0 3.0",
        "012": "8.6 7.5 5.2  7.1 5.2 2.9  6.3 2.9 1.7",
        "100": "9.8 9.5 9.4 8.7 9.1 8.1  9.4 8.9 8.6 7.4 7.7 6.4  8.7 7.5 7.4 6.3 6.3 4.9",
        "101": "9.4 8.9 8.8 7.7 7.6 6.7  8.6 7.6 7.4 5.8 5.9 5.0  7.2 5.7 5.7 5.2 5.2 2.5",
        "102": "8.3 7.0 5.4  6.5 5.8 2.6  5.3 2.1 1.3",
        "110": "9.5 9.0 8.8 7.6 7.6 7.0  9.0 7.7 7.5 6.2 6.1 5.3  7.7 6.6 6.8 5.9 5.2 3.0",
        "111": "8.9 7.8 7.6 6.7 6.2 5.8  7.4 5.9 5.7 5.7 4.7 2.3  6.1 5.2 5.7 2.9 2.4 1.6",
        "112": "7.1 5.9 3.0  5.8 2.6 1.5  2.3 1.3 0.6",
        "200": "9.3 8.7 8.6 7.2 7.5 5.8  8.6 7.4 7.4 6.1 5.6 3.4  7.0 5.4 5.2 4.0 4.0 2.2",
        "201": "8.5 7.5 7.4 5.5 6.2 5.1  7.2 5.7 5.5 4.1 4.6 1.9  5.3 3.6 3.4 1.9 1.9 0.8",
        "202": "6.4 5.1 2.0  4.7 2.1 1.1  2.4 0.9 0.4",
        "210": "8.8 7.5 7.3 5.3 6.0 5.0  7.3 5.5 5.9 4.0 4.1 2.0  5.4 4.3 4.5 2.2 2.0 1.1",
        "211": "7.5 5.5 5.8 4.5 4.0 2.1  6.1 5.1 4.8 1.8 2.0 0.9  4.6 1.8 1.7 0.7 0.8 0.2",
        "212": "5.3 2.4 1.4  2.4 1.2 0.5  1.0 0.3 0.1",
    }
    table: dict[str, float] = {}
    for prefix, text in rows.items():
        values = [float(v) for v in text.split()]
        eq6_levels = (1,) if prefix[2] == "2" else (0, 1)
        keys = [f"{prefix}{eq4}{eq5}{eq6}" for eq4 in range(3) for eq5 in range(3) for eq6 in eq6_levels]
        if len(keys) != len(values):
            raise AssertionError(f"CVSS v4.0 lookup row {prefix} has {len(values)} values")
        table.update(zip(keys, values))
    return table


LOOKUP = _lookup_table()

# Severity level of each metric value, in steps of 0.1 (0 = most severe).
_LEVELS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.0, "A": 0.1, "L": 0.2, "P": 0.3},
    "PR": {"N": 0.0, "L": 0.1, "H": 0.2},
    "UI": {"N": 0.0, "P": 0.1, "A": 0.2},
    "AC": {"L": 0.0, "H": 0.1},
    "AT": {"N": 0.0, "P": 0.1},
    "VC": {"H": 0.0, "L": 0.1, "N": 0.2},
    "VI": {"H": 0.0, "L": 0.1, "N": 0.2},
    "VA": {"H": 0.0, "L": 0.1, "N": 0.2},
    "SC": {"H": 0.1, "L": 0.2, "N": 0.3},
    "SI": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
    "SA": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
    "CR": {"H": 0.0, "M": 0.1, "L": 0.2},
    "IR": {"H": 0.0, "M": 0.1, "L": 0.2},
    "AR": {"H": 0.0, "M": 0.1, "L": 0.2},
    "E": {"U": 0.2, "P": 0.1, "A": 0.0},
}

# The highest-severity vectors of each EQ level ("max composed"); for EQ3
# they depend on EQ6 too. Tried in this order when composing.
_MAX_EQ1 = {0: ["AV:N/PR:N/UI:N"], 1: ["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
            2: ["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"]}
_MAX_EQ2 = {0: ["AC:L/AT:N"], 1: ["AC:H/AT:N", "AC:L/AT:P"]}
_MAX_EQ3_EQ6 = {
    (0, 0): ["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
    (0, 1): ["VC:H/VI:H/VA:L/CR:M/IR:M/AR:H", "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M"],
    (1, 0): ["VC:L/VI:H/VA:H/CR:H/IR:H/AR:H", "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H"],
    (1, 1): ["VC:L/VI:H/VA:L/CR:H/IR:M/AR:H", "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M", "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
             "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H", "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M"],
    (2, 1): ["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"],
}
_MAX_EQ4 = {0: ["SC:H/SI:S/SA:S"], 1: ["SC:H/SI:H/SA:H"], 2: ["SC:L/SI:L/SA:L"]}
_MAX_EQ5 = {0: ["E:A"], 1: ["E:P"], 2: ["E:U"]}

# Depth of each MacroVector (the largest severity distance inside it, + 1),
# in 0.1 steps.
_DEPTH_EQ1 = {0: 1, 1: 4, 2: 5}
_DEPTH_EQ2 = {0: 1, 1: 2}
_DEPTH_EQ3_EQ6 = {(0, 0): 7, (0, 1): 6, (1, 0): 8, (1, 1): 8, (2, 1): 10}
_DEPTH_EQ4 = {0: 6, 1: 5, 2: 4}

_STEP = 0.1


def effective_metrics(vector: CvssVector, *, base_only: bool) -> dict[str, str]:
    """The value each scoring metric takes. Unset (or X) threat and
    security-requirement metrics take their worst case (E:A, CR/IR/AR:H);
    a modified base metric (MAV, MVC, ...) replaces its base metric. With
    `base_only`, threat and environmental metrics are ignored (CVSS-B)."""
    given = dict(vector.metrics)
    out = {name: given[name] for name in BASE_METRICS}
    for name, worst in (("E", "A"), ("CR", "H"), ("IR", "H"), ("AR", "H")):
        value = given.get(name, "X")
        out[name] = worst if base_only or value == "X" else value
    if not base_only:
        for name in BASE_METRICS:
            modified = given.get("M" + name, "X")
            if modified != "X":
                out[name] = modified
    # MSI:S / MSA:S ("safety") reach SI / SA through the loop above: S
    # exists only as a modified value.
    return out


def macrovector(m: dict[str, str]) -> str:
    """The EQ1..EQ6 levels of effective metrics `m`, as a 6-digit string."""
    av, pr, ui = m["AV"], m["PR"], m["UI"]
    if av == "N" and pr == "N" and ui == "N":
        eq1 = 0
    elif (av == "N" or pr == "N" or ui == "N") and av != "P":
        eq1 = 1
    else:
        eq1 = 2
    eq2 = 0 if m["AC"] == "L" and m["AT"] == "N" else 1
    vc, vi, va = m["VC"], m["VI"], m["VA"]
    if vc == "H" and vi == "H":
        eq3 = 0
    elif vc == "H" or vi == "H" or va == "H":
        eq3 = 1
    else:
        eq3 = 2
    if m["SI"] == "S" or m["SA"] == "S":
        eq4 = 0
    elif m["SC"] == "H" or m["SI"] == "H" or m["SA"] == "H":
        eq4 = 1
    else:
        eq4 = 2
    eq5 = {"A": 0, "P": 1, "U": 2}[m["E"]]
    high_requirement = ((m["CR"] == "H" and vc == "H") or (m["IR"] == "H" and vi == "H")
                        or (m["AR"] == "H" and va == "H"))
    eq6 = 0 if high_requirement else 1
    return f"{eq1}{eq2}{eq3}{eq4}{eq5}{eq6}"


def _parse_max(parts: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        for item in part.split("/"):
            name, value = item.split(":")
            out[name] = value
    return out


# The reference calculator lifts the unrounded score by 1e-6 before rounding
# (FIRST/Red Hat calculator fix of November 2024: a float result one ulp
# below an x.x5 tie, e.g. 8.549999999999999 for 8.55, now rounds up).
_EPSILON = 1e-6


def _round_half_up_1(value: float) -> float:
    """Round half up to one decimal, after the reference's epsilon lift
    (JavaScript's Math.round((value + 1e-6) * 10) / 10 for value >= 0)."""
    shifted = (value + _EPSILON) * 10
    whole = math.floor(shifted)
    return (whole + 1 if shifted - whole >= 0.5 else whole) / 10


def score_metrics(m: dict[str, str]) -> float:
    """The score of effective metrics `m` (see `effective_metrics`)."""
    if all(m[name] == "N" for name in ("VC", "VI", "VA", "SC", "SI", "SA")):
        return 0.0
    mv = macrovector(m)
    eq1, eq2, eq3, eq4, eq5, eq6 = (int(c) for c in mv)
    value = LOOKUP[mv]

    def lower(d1: int = 0, d2: int = 0, d3: int = 0, d4: int = 0, d5: int = 0, d6: int = 0) -> float | None:
        return LOOKUP.get(f"{eq1 + d1}{eq2 + d2}{eq3 + d3}{eq4 + d4}{eq5 + d5}{eq6 + d6}")

    # 1a. The score of the next lower MacroVector along each EQ (None: none).
    lower_eq1 = lower(d1=1)
    lower_eq2 = lower(d2=1)
    if eq3 == 0 and eq6 == 0:
        left, right = lower(d6=1), lower(d3=1)
        lower_eq3eq6 = None if left is None or right is None else max(left, right)
    elif eq3 == 1 and eq6 == 0:
        lower_eq3eq6 = lower(d6=1)
    elif eq6 == 1 and eq3 in (0, 1):
        lower_eq3eq6 = lower(d3=1)
    else:
        lower_eq3eq6 = lower(d3=1, d6=1)   # never exists: 2,1 is the lowest
    lower_eq4 = lower(d4=1)
    lower_eq5 = lower(d5=1)

    # 1b. The severity distance from the first highest-severity vector of the
    # MacroVector that is at least as severe as `m` in every metric.
    distances: dict[str, float] = {}
    for parts in _compositions(eq1, eq2, eq3, eq4, eq5, eq6):
        top = _parse_max(parts)
        distances = {name: levels[m[name]] - levels[top[name]] for name, levels in _LEVELS.items()}
        if all(d >= 0 for d in distances.values()):
            break
    d = distances
    distance_eq1 = d["AV"] + d["PR"] + d["UI"]
    distance_eq2 = d["AC"] + d["AT"]
    distance_eq3eq6 = d["VC"] + d["VI"] + d["VA"] + d["CR"] + d["IR"] + d["AR"]
    distance_eq4 = d["SC"] + d["SI"] + d["SA"]

    # 1c-d. Each EQ's available score difference, scaled by the proportion
    # of the MacroVector's depth that the vector is away from its top.
    contributions = []
    for lower_score, distance, depth in (
            (lower_eq1, distance_eq1, _DEPTH_EQ1[eq1] * _STEP),
            (lower_eq2, distance_eq2, _DEPTH_EQ2[eq2] * _STEP),
            (lower_eq3eq6, distance_eq3eq6, _DEPTH_EQ3_EQ6[(eq3, eq6)] * _STEP),
            (lower_eq4, distance_eq4, _DEPTH_EQ4[eq4] * _STEP),
            (lower_eq5, 0.0, 1.0)):   # EQ5 contributes no distance
        if lower_score is None:
            contributions.append(0.0)
            continue
        contributions.append((value - lower_score) * (distance / depth))
    existing = sum(1 for s in (lower_eq1, lower_eq2, lower_eq3eq6, lower_eq4, lower_eq5) if s is not None)
    # 2. The mean of the proportional differences, summed in EQ order.
    if existing == 0:
        mean = 0.0
    else:
        total = 0.0
        for c in contributions:
            total += c
        mean = total / existing
    # 3. MacroVector score minus the mean, clamped and rounded.
    return _round_half_up_1(max(0.0, min(10.0, value - mean)))


def _compositions(eq1: int, eq2: int, eq3: int, eq4: int, eq5: int,
                  eq6: int) -> list[tuple[str, str, str, str, str]]:
    return [(a, b, c, d, e)
            for a in _MAX_EQ1[eq1] for b in _MAX_EQ2[eq2] for c in _MAX_EQ3_EQ6[(eq3, eq6)]
            for d in _MAX_EQ4[eq4] for e in _MAX_EQ5[eq5]]


def base_score_v4(vector: CvssVector) -> Decimal:
    """CVSS-B: the score of the base metrics alone (threat and environmental
    metrics in the vector are ignored, as for v2 and v3 base scores)."""
    return Decimal(str(score_metrics(effective_metrics(vector, base_only=True)))).quantize(Decimal("0.1"))


def score_v4(vector: CvssVector) -> Decimal:
    """The score of every metric the vector gives: CVSS-B, -BT, -BE or -BTE
    in the specification's nomenclature."""
    return Decimal(str(score_metrics(effective_metrics(vector, base_only=False)))).quantize(Decimal("0.1"))


def nomenclature(vector: CvssVector) -> str:
    """CVSS-B, CVSS-BT, CVSS-BE or CVSS-BTE: which groups a full score uses."""
    given = dict(vector.metrics)
    threat = given.get("E", "X") != "X"
    env = any(given.get(n, "X") != "X" for n in ("CR", "IR", "AR")) or \
        any(k.startswith("M") and v != "X" for k, v in given.items())
    return "CVSS-B" + ("T" if threat else "") + ("E" if env else "")
