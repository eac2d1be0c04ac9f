"""CVSS vector strings: parsing, base scores and qualitative severities.

Supported: CVSS v2 (bare `AV:N/AC:L/Au:N/C:P/I:P/A:P`, optionally wrapped in
parentheses as NVD prints it, or prefixed `CVSS:2.0/`), v3.0 (`CVSS:3.0/`),
v3.1 (`CVSS:3.1/`) and v4.0 (`CVSS:4.0/`).

Scores are computed with exact decimal arithmetic from the specifications'
equations, so no binary floating-point error can move a score across a
rounding boundary; each version then rounds the way its specification says:

* v3.1: `Roundup` of the specification's Appendix A (round the input to five
  decimal places, then up to one decimal place);
* v3.0: the smallest one-decimal number equal to or higher than the input
  (specification v3.0, section 7.4);
* v2:   `round_to_1_decimal` (half up) on `... * f(Impact)`.

v4.0 scores come from the specification's MacroVector lookup
(`kbuilder.metadata.cvss4`). Only base metrics are scored: temporal, threat,
environmental and supplemental metrics are parsed, validated and kept in the
vector, but not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext

from kbuilder.errors import InputError

__all__ = [
    "CvssError", "CvssVector", "SEVERITIES", "VERSIONS", "base_score", "parse_vector", "score_vector",
    "ScoredVector", "severity", "severity_rank",
]

VERSIONS = ("2.0", "3.0", "3.1", "4.0")
# Qualitative ratings, lowest first. v2 uses LOW/MEDIUM/HIGH only (NVD's bands).
SEVERITIES = ("NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")

D = Decimal
ONE_DECIMAL = D("0.1")


class CvssError(InputError):
    """A CVSS vector that cannot be parsed. `metric` names the offending
    metric when there is one; the message starts with the vector itself."""

    kind = "bad-cvss"

    def __init__(self, vector: str, detail: str, *, metric: str | None = None, path: str | None = None) -> None:
        super().__init__(f"{vector}: {detail}" if vector else detail, path=path)
        self.vector = vector
        self.detail = detail
        self.metric = metric


@dataclass(frozen=True, slots=True)
class _Metric:
    name: str
    values: tuple[str, ...]
    mandatory: bool = False


def _metrics(base: str, optional: str) -> tuple[_Metric, ...]:
    """`"AV=N,A,L,P AC=L,H"`: metric names with their values in the
    specification's order (the order error messages list them in)."""
    out = []
    for spec, mandatory in ((base, True), (optional, False)):
        for item in spec.split():
            name, values = item.split("=")
            out.append(_Metric(name, tuple(values.split(",")), mandatory))
    return tuple(out)


_V2_METRICS = _metrics(
    "AV=L,A,N AC=H,M,L Au=M,S,N C=N,P,C I=N,P,C A=N,P,C",
    "E=U,POC,F,H,ND RL=OF,TF,W,U,ND RC=UC,UR,C,ND "
    "CDP=N,L,LM,MH,H,ND TD=N,L,M,H,ND CR=L,M,H,ND IR=L,M,H,ND AR=L,M,H,ND")

_V3_METRICS = _metrics(
    "AV=N,A,L,P AC=L,H PR=N,L,H UI=N,R S=U,C C=H,L,N I=H,L,N A=H,L,N",
    "E=X,H,F,P,U RL=X,U,W,T,O RC=X,C,R,U "
    "CR=X,H,M,L IR=X,H,M,L AR=X,H,M,L MAV=X,N,A,L,P MAC=X,L,H MPR=X,N,L,H MUI=X,N,R MS=X,U,C "
    "MC=X,H,L,N MI=X,H,L,N MA=X,H,L,N")

_V4_METRICS = _metrics(
    "AV=N,A,L,P AC=L,H AT=N,P PR=N,L,H UI=N,P,A VC=H,L,N VI=H,L,N VA=H,L,N SC=H,L,N SI=H,L,N SA=H,L,N",
    "E=X,A,P,U CR=X,H,M,L IR=X,H,M,L AR=X,H,M,L MAV=X,N,A,L,P MAC=X,L,H MAT=X,N,P MPR=X,N,L,H "
    "MUI=X,N,P,A MVC=X,H,L,N MVI=X,H,L,N MVA=X,H,L,N MSC=X,H,L,N MSI=X,S,H,L,N MSA=X,S,H,L,N "
    "S=X,N,P AU=X,N,Y R=X,A,U,I V=X,D,C RE=X,L,M,H U=X,Clear,Green,Amber,Red")

_METRICS = {"2.0": _V2_METRICS, "3.0": _V3_METRICS, "3.1": _V3_METRICS, "4.0": _V4_METRICS}
# Metrics that exist in v3 but not in v2: a bare vector naming one of them
# is a v3 vector that lost its prefix, not a bad v2 vector.
_V3_ONLY = {"PR", "UI", "S"}


@dataclass(frozen=True, slots=True)
class CvssVector:
    """A parsed vector. `metrics` holds every metric given, in the
    specification's order; `text` is the string as it was given."""

    version: str
    metrics: tuple[tuple[str, str], ...]
    text: str

    def __getitem__(self, name: str) -> str:
        for key, value in self.metrics:
            if key == name:
                return value
        raise KeyError(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except KeyError:
            return default

    @property
    def vector(self) -> str:
        """The canonical string: the version's prefix (none for v2, as NVD
        writes it) and the metrics in the specification's order."""
        body = "/".join(f"{k}:{v}" for k, v in self.metrics)
        return body if self.version == "2.0" else f"CVSS:{self.version}/{body}"

    def __str__(self) -> str:
        return self.vector


def parse_vector(text: str) -> CvssVector:
    """Parse a CVSS v2, v3.0, v3.1 or v4.0 vector string.

    Metric names and values are case-sensitive, as the specifications say.
    Metrics may come in any order (v3.x allows it explicitly; the others are
    accepted the same way) and are stored in the specification's order.
    Raises `CvssError` naming the bad metric.
    """
    if not isinstance(text, str):
        raise CvssError("", f"a CVSS vector must be a string, not {type(text).__name__}")
    original = text
    text = text.strip()
    if not text:
        raise CvssError("", "empty CVSS vector")
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if text.startswith("CVSS:"):
        prefix, sep, body = text.partition("/")
        version = prefix[len("CVSS:"):]
        if version not in VERSIONS:
            raise CvssError(original, f"unsupported CVSS version {version!r} "
                                      f"(expected {', '.join(VERSIONS[:-1])} or {VERSIONS[-1]})")
        if not sep or not body:
            raise CvssError(original, f"no metrics after {prefix}/")
    else:
        version, body = "2.0", text
    known = {m.name: m for m in _METRICS[version]}
    given: dict[str, str] = {}
    for part in body.split("/"):
        if not part:
            raise CvssError(original, "empty metric (a stray '/')")
        name, sep, value = part.partition(":")
        if not sep or not name or not value or ":" in value:
            raise CvssError(original, f"{part!r} is not METRIC:VALUE")
        metric = known.get(name)
        if metric is None:
            if version == "2.0" and name in _V3_ONLY:
                raise CvssError(original, f"unknown metric {name} in a CVSS v2 vector (a v3 vector needs "
                                          "its 'CVSS:3.1/' or 'CVSS:3.0/' prefix)", metric=name)
            raise CvssError(original, f"unknown metric {name}", metric=name)
        if name in given:
            raise CvssError(original, f"duplicate metric {name}", metric=name)
        if value not in metric.values:
            raise CvssError(original, f"metric {name} has invalid value {value} "
                                      f"(expected {', '.join(metric.values)})", metric=name)
        given[name] = value
    missing = [m.name for m in _METRICS[version] if m.mandatory and m.name not in given]
    if missing:
        label = "metric" if len(missing) == 1 else "metrics"
        raise CvssError(original, f"missing {label} {', '.join(missing)}", metric=missing[0])
    ordered = tuple((m.name, given[m.name]) for m in _METRICS[version] if m.name in given)
    return CvssVector(version, ordered, original)


# ---------------------------------------------------------------------------
# v3.0 / v3.1 (FIRST CVSS v3.1 specification, section 7 and Appendix A)
# ---------------------------------------------------------------------------

_V3_AV = {"N": D("0.85"), "A": D("0.62"), "L": D("0.55"), "P": D("0.2")}
_V3_AC = {"L": D("0.77"), "H": D("0.44")}
_V3_PR = {"U": {"N": D("0.85"), "L": D("0.62"), "H": D("0.27")},
          "C": {"N": D("0.85"), "L": D("0.68"), "H": D("0.5")}}
_V3_UI = {"N": D("0.85"), "R": D("0.62")}
_V3_CIA = {"H": D("0.56"), "L": D("0.22"), "N": D("0")}


def roundup_v31(value: Decimal) -> Decimal:
    """CVSS v3.1 Appendix A: round to five decimal places first (the
    specification's `round_to_nearest_integer(input * 100000)`), then up to
    one decimal place."""
    int_input = int((value * 100000).to_integral_value(ROUND_HALF_UP))
    if int_input % 10000 == 0:
        return (D(int_input) / 100000).quantize(ONE_DECIMAL)
    return (D(int_input // 10000 + 1) / 10).quantize(ONE_DECIMAL)


def roundup_v30(value: Decimal) -> Decimal:
    """CVSS v3.0 section 7.4: the smallest number, to one decimal place,
    that is equal to or higher than the input."""
    return value.quantize(ONE_DECIMAL, rounding=ROUND_CEILING)


def v3_subscores(vector: CvssVector) -> tuple[Decimal, Decimal]:
    """(Impact, Exploitability), unrounded, for a v3.x vector."""
    scope = vector["S"]
    with localcontext() as ctx:
        ctx.prec = 200  # (ISS - 0.02) ** 15 needs ~90 digits; keep every one
        iss = 1 - (1 - _V3_CIA[vector["C"]]) * (1 - _V3_CIA[vector["I"]]) * (1 - _V3_CIA[vector["A"]])
        if scope == "U":
            impact = D("6.42") * iss
        else:
            impact = D("7.52") * (iss - D("0.029")) - D("3.25") * (iss - D("0.02")) ** 15
        exploitability = (D("8.22") * _V3_AV[vector["AV"]] * _V3_AC[vector["AC"]] * _V3_PR[scope][vector["PR"]]
                          * _V3_UI[vector["UI"]])
    return impact, exploitability


def _base_v3(vector: CvssVector) -> Decimal:
    impact, exploitability = v3_subscores(vector)
    if impact <= 0:
        return D("0.0")
    with localcontext() as ctx:
        ctx.prec = 200
        total = impact + exploitability
        if vector["S"] == "C":
            total = D("1.08") * total
        total = min(total, D(10))
    return roundup_v31(total) if vector.version == "3.1" else roundup_v30(total)


# ---------------------------------------------------------------------------
# v2 (FIRST "A Complete Guide to the CVSS Version 2", section 3.2.1)
# ---------------------------------------------------------------------------

_V2_AV = {"L": D("0.395"), "A": D("0.646"), "N": D("1.0")}
_V2_AC = {"H": D("0.35"), "M": D("0.61"), "L": D("0.71")}
_V2_AU = {"M": D("0.45"), "S": D("0.56"), "N": D("0.704")}
_V2_CIA = {"N": D("0.0"), "P": D("0.275"), "C": D("0.660")}


def v2_subscores(vector: CvssVector) -> tuple[Decimal, Decimal]:
    """(Impact, Exploitability), unrounded, for a v2 vector."""
    with localcontext() as ctx:
        ctx.prec = 100
        impact = D("10.41") * (1 - (1 - _V2_CIA[vector["C"]]) * (1 - _V2_CIA[vector["I"]])
                               * (1 - _V2_CIA[vector["A"]]))
        exploitability = D(20) * _V2_AV[vector["AV"]] * _V2_AC[vector["AC"]] * _V2_AU[vector["Au"]]
    return impact, exploitability


def _base_v2(vector: CvssVector) -> Decimal:
    impact, exploitability = v2_subscores(vector)
    f_impact = D(0) if impact == 0 else D("1.176")
    with localcontext() as ctx:
        ctx.prec = 100
        raw = (D("0.6") * impact + D("0.4") * exploitability - D("1.5")) * f_impact
    return raw.quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------
# Public scoring API
# ---------------------------------------------------------------------------

def base_score(vector: CvssVector | str) -> Decimal | None:
    """The base score, a Decimal with one decimal place (e.g. Decimal('7.8')).
    Temporal, threat and environmental metrics are not applied."""
    if isinstance(vector, str):
        vector = parse_vector(vector)
    if vector.version == "2.0":
        return _base_v2(vector)
    if vector.version in ("3.0", "3.1"):
        return _base_v3(vector)
    from kbuilder.metadata.cvss4 import base_score_v4

    return base_score_v4(vector)


def severity(score: Decimal | float | int | str | None, version: str) -> str | None:
    """The qualitative rating of a base score.

    v3.x and v4.0 (specification table): NONE 0.0, LOW 0.1-3.9, MEDIUM
    4.0-6.9, HIGH 7.0-8.9, CRITICAL 9.0-10.0. v2 (NVD's bands; the v2
    specification defines none): LOW 0.0-3.9, MEDIUM 4.0-6.9, HIGH 7.0-10.0.
    """
    if score is None:
        return None
    if version not in VERSIONS:
        raise ValueError(f"unknown CVSS version {version!r}")
    value = D(str(score)) if not isinstance(score, Decimal) else score
    if not D(0) <= value <= D(10):
        raise ValueError(f"CVSS score {score} is outside 0.0-10.0")
    if version == "2.0":
        return "LOW" if value < 4 else "MEDIUM" if value < 7 else "HIGH"
    if value == 0:
        return "NONE"
    return "LOW" if value < 4 else "MEDIUM" if value < 7 else "HIGH" if value < 9 else "CRITICAL"


def severity_rank(name: str) -> int:
    """0 for NONE ... 4 for CRITICAL; case-insensitive. ValueError otherwise."""
    try:
        return SEVERITIES.index(name.upper())
    except (ValueError, AttributeError):
        raise ValueError(f"unknown severity {name!r} (expected {', '.join(s.lower() for s in SEVERITIES)})") \
            from None


@dataclass(frozen=True, slots=True)
class ScoredVector:
    version: str
    vector: str             # canonical form
    base_score: Decimal | None
    severity: str | None

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "vector": self.vector,
                "base_score": float(self.base_score) if self.base_score is not None else None,
                "severity": self.severity}


def score_vector(text: str) -> ScoredVector:
    """Parse, score and rate one vector string."""
    vector = parse_vector(text)
    score = base_score(vector)
    return ScoredVector(vector.version, vector.vector, score, severity(score, vector.version))
