"""One medication line's dosage (dosering) as a FHIR R4 ``Dosage``, both ways: the neutral
:class:`Dosage` the adapters fill from their native documents, :func:`dosage_element` that
writes it and :func:`read_dosage` that reads it back. Pure. Used by
:mod:`services.messaging.medication`; mapping ``contracts/fhir/medication-list.md``.

"Vid behov" (as needed, PRN) is ``Dosage.asNeeded[x]``: a ``CodeableConcept`` when the
prescriber wrote a condition ("vid smärta"), ``boolean`` otherwise. The highest dose allowed
in a period ("högst 4 tabletter per dygn") is ``Dosage.maxDosePerPeriod``, a Ratio of the
amount to a number of hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.messaging import vocabulary as vocab
from services.messaging.fhir_parts import (
    TranslationError,
    coded,
    integer,
    maybe_boolean,
    maybe_integer,
    maybe_obj,
    maybe_text,
    number,
    text,
    texts,
)

# Journal dose unit → UCUM code; other units ("st", "E", "dospåse") only as Quantity.unit.
UCUM_CODES = {u: u for u in ("mg", "g", "ug", "ng", "mL", "L", "mmol", "[IU]")}
UCUM_CODES |= {"ml": "mL", "l": "L", "mikrogram": "ug", "IE": "[IU]"}
HOUR = "h"  # UCUM code of the maximum dose's period


def finite(value: float) -> float:
    """``value`` if it is a real number; NaN and ±Infinity are no dose (pydantic validator)."""
    if not math.isfinite(value):
        raise ValueError("must be a finite number (NaN and Infinity are not doses)")
    return value


@dataclass(frozen=True, slots=True)
class Dose:
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class MaxDose:
    """At most ``value`` ``unit`` in ``period_hours`` hours, e.g. 4 st per 24 h."""

    value: float
    unit: str
    period_hours: int


@dataclass(frozen=True, slots=True)
class AsNeededCondition:
    """When an as-needed dose may be given: the prescriber's text, and a SNOMED CT code."""

    text: str
    snomed_code: str | None = None


@dataclass(frozen=True, slots=True)
class Dosage:
    text: str  # always: the dosage as the prescriber wrote it
    dose: Dose | None = None
    times_per_day: int | None = None
    times_of_day: tuple[str, ...] = ()  # "HH:MM", local time
    as_needed: bool | None = None  # vid behov; None: the journal did not say
    as_needed_condition: AsNeededCondition | None = None  # only with as_needed True
    max_dose: MaxDose | None = None

    def __post_init__(self) -> None:
        if self.as_needed_condition is not None and self.as_needed is not True:
            raise ValueError("an as-needed condition needs as_needed True")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if unit in UCUM_CODES:
        quantity |= {"system": vocab.UCUM_SYSTEM, "code": UCUM_CODES[unit]}
    return quantity


def dosage_element(dosage: Dosage) -> dict[str, Any]:
    out: dict[str, Any] = {"text": dosage.text}
    repeat: dict[str, Any] = {}
    if dosage.times_per_day is not None:
        repeat |= {"frequency": dosage.times_per_day, "period": 1, "periodUnit": "d"}
    if dosage.times_of_day:
        repeat["timeOfDay"] = [f"{t}:00" for t in dosage.times_of_day]
    if repeat:
        out["timing"] = {"repeat": repeat}
    condition = dosage.as_needed_condition
    if condition is not None:
        concept: dict[str, Any] = {"text": condition.text}
        if condition.snomed_code is not None:
            coding = {"system": vocab.SNOMED_SYSTEM, "version": vocab.SNOMED_SE_VERSION}
            concept["coding"] = [coding | {"code": condition.snomed_code}]
        out["asNeededCodeableConcept"] = concept
    elif dosage.as_needed is not None:
        out["asNeededBoolean"] = dosage.as_needed
    if dosage.dose is not None:
        out["doseAndRate"] = [{"doseQuantity": _quantity(dosage.dose.value, dosage.dose.unit)}]
    if dosage.max_dose is not None:
        m = dosage.max_dose
        period = {"value": m.period_hours, "unit": HOUR, "system": vocab.UCUM_SYSTEM, "code": HOUR}
        out["maxDosePerPeriod"] = {"numerator": _quantity(m.value, m.unit), "denominator": period}
    return out


def read_dosage(statement: dict[str, Any]) -> Dosage:
    """The first ``dosage`` of a MedicationStatement; :class:`TranslationError` if broken."""
    quantity = maybe_obj(statement, "dosage.0.doseAndRate.0.doseQuantity")
    concept = maybe_obj(statement, "dosage.0.asNeededCodeableConcept")
    condition = None
    if concept is not None:
        code = coded(concept, vocab.SNOMED_SYSTEM)
        condition = AsNeededCondition(text(concept, "text"), code)
    as_needed = maybe_boolean(statement, "dosage.0.asNeededBoolean")
    return Dosage(
        text=text(statement, "dosage.0.text"),
        dose=None if quantity is None else Dose(number(quantity, "value"), text(quantity, "unit")),
        times_per_day=maybe_integer(statement, "dosage.0.timing.repeat.frequency"),
        times_of_day=tuple(t[:5] for t in texts(statement, "dosage.0.timing.repeat.timeOfDay")),
        as_needed=True if condition is not None else as_needed,
        as_needed_condition=condition,
        max_dose=_read_max_dose(maybe_obj(statement, "dosage.0.maxDosePerPeriod")),
    )


def _read_max_dose(ratio: dict[str, Any] | None) -> MaxDose | None:
    if ratio is None:
        return None
    if maybe_text(ratio, "denominator.code") != HOUR:
        raise TranslationError("maxDosePerPeriod.denominator must be in hours (UCUM h)")
    hours = integer(ratio, "denominator.value")
    if hours < 1:
        raise TranslationError("maxDosePerPeriod.denominator must be at least one hour")
    return MaxDose(number(ratio, "numerator.value"), text(ratio, "numerator.unit"), hours)
