"""Sample medication lists (läkemedelslistor): pure (a ``random.Random`` and ``now``), valid
against ``contracts/takecare/medication-list.schema.json`` and
``contracts/treserva/medication-list.schema.json``.

Products, strengths, forms and ATC codes are real Swedish medicines; the NPL-ids and NPL pack
ids are invented 14-digit numbers in the NPL style, not real ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.simulators.samples.people import (
    STOCKHOLM,
    takecare_consent_basis,
    takecare_patient,
    takecare_unit,
    treserva_brukare,
    treserva_enhet,
    treserva_samtyckesgrund,
)


@dataclass(frozen=True, slots=True)
class Medicine:
    name: str
    strength: str
    form: str
    atc: str
    npl_id: str
    npl_pack_id: str
    dose_value: float
    dose_unit: str
    per_day: int  # the usual number of doses a day
    reason: str


# name | strength | form | ATC | NPL-id | dose | doses a day | indication (ändamål)
# NPL-ids are invented 14-digit product ids (date of registration + serial), not personnummer.
_TABLE = """
Alvedon|500 mg|tablett|N02BE01|19620418000019|1000 mg|3|Smärta i höften
Metoprolol Sandoz|50 mg|depottablett|C07AB02|20050603000034|50 mg|1|Förmaksflimmer
Furosemid Accord|40 mg|tablett|C03CA01|20090217000043|40 mg|1|Hjärtsvikt, ödem
Waran|2,5 mg|tablett|B01AA03|19611201000026|1 st|1|Förmaksflimmer, dos enligt AK-mottagningen
Eliquis|5 mg|filmdragerad tablett|B01AF02|20110518000031|5 mg|2|Strokeprofylax
Oxascand|10 mg|tablett|N05BA04|19730625000012|10 mg|2|Oro och ångest
Movicol|13,7 g|pulver till oral lösning|A06AD65|19960913000048|1 dospåse|2|Förstoppning
Omeprazol Actavis|20 mg|enterokapsel, hård|A02BC01|20010926000055|20 mg|1|Magskydd
Atorvastatin Krka|40 mg|filmdragerad tablett|C10AA05|20080314000067|40 mg|1|Höga blodfetter
Levaxin|50 mikrogram|tablett|H03AA01|19881027000072|50 ug|1|Hypotyreos
Metformin Meda|500 mg|filmdragerad tablett|A10BA02|19961122000081|500 mg|2|Diabetes typ 2
Enalapril Sandoz|10 mg|tablett|C09AA02|20000512000096|10 mg|1|Högt blodtryck
Zopiklon Mylan|5 mg|filmdragerad tablett|N05CF01|19990219000017|5 mg|1|Sömnsvårigheter
Sertralin Teva|50 mg|filmdragerad tablett|N06AB06|20030808000029|50 mg|1|Depression
Laktulos Meda|670 mg/ml|oral lösning|A06AD11|19850430000033|15 ml|2|Förstoppning
Insulatard FlexPen|100 IE/ml|injektionsvätska|A10AC01|20020115000044|12 E|1|Diabetes, kvällsdos
Trombyl|75 mg|tablett|B01AC06|19890915000058|75 mg|1|Sekundärprevention efter stroke
Behepan|1 mg|filmdragerad tablett|B03BA01|19940610000061|1 mg|1|B12-brist
Oxynorm|5 mg|kapsel, hård|N02AA05|20000929000075|5 mg|4|Smärta efter höftoperation
Amlodipin Bluefish|5 mg|tablett|C08CA01|20071120000089|5 mg|1|Högt blodtryck
"""


def _medicine(row: str) -> Medicine:
    name, strength, form, atc, npl, dose, per_day, reason = row.split("|")
    value, unit = dose.split(" ", 1)
    number = int(value) if value.isdigit() else float(value)
    pack = f"{npl[:8]}1{npl[9:]}"  # an invented pack id of the product
    return Medicine(name, strength, form, atc, npl, pack, number, unit, int(per_day), reason)


MEDICINES: tuple[Medicine, ...] = tuple(_medicine(r) for r in _TABLE.strip().splitlines())
# Lines that are text only (no NPL-id, no ATC): extemporaneous or foreign products.
TEXT_ONLY: tuple[tuple[str, str], ...] = (
    ("Hudkräm, apoteksberedd", "Smörjes på torra fläckar på underbenen morgon och kväll"),
    ("Ögondroppar från Åland", "1 droppe i vänster öga vid behov, högst 4 gånger per dygn"),
)
SCHEDULES: dict[int, tuple[tuple[tuple[str, ...], str], ...]] = {
    1: (
        (("08:00",), "1 gång dagligen, på morgonen"),
        (("20:00",), "1 gång dagligen, till kvällen"),
    ),
    2: ((("08:00", "20:00"), "2 gånger dagligen, morgon och kväll"),),
    3: ((("08:00", "14:00", "20:00"), "3 gånger dagligen"),),
    4: ((("07:00", "12:00", "17:00", "22:00"), "4 gånger dagligen"),),
}
CHANGE_NOTES = {
    "active": (
        "Dosen sänkt under vårdtiden på grund av lågt blodtryck",
        "Nyinsatt på avdelningen, följs upp på vårdcentralen om två veckor",
    ),
    "paused": ("Pausad inför operation, återinsätts efter besked från läkare",),
    "stopped": (
        "Utsatt under vårdtiden, ersätts av Eliquis. Överblivna tabletter lämnas till apoteket",
        "Utsatt på grund av yrsel och ökad fallrisk",
    ),
}
# "Vid behov" conditions: the text a prescriber writes and, for most, a SNOMED CT finding.
AS_NEEDED_CONDITIONS: tuple[tuple[str, str | None], ...] = (
    ("vid smärta", "22253000"),
    ("vid sömnsvårigheter", "193462001"),
    ("vid oro", "48694002"),
    ("vid förstoppning", "14760008"),
    ("vid illamående", "422587007"),
    ("vid andfåddhet", None),
)
PRESCRIBERS = (
    ("SE2321000222-L0417", "Karin Öst, överläkare"),
    ("SE2321000222-L1239", "Jörgen Ählström, specialistläkare"),
    ("SE2321000222-VC0088", "Sara Lindqvist, distriktsläkare"),
)
# Reasons for a line's change since the previous list (status → change kinds it may have).
CHANGE_REASONS = {
    "started": ("Nyinsatt på avdelningen, följs upp på vårdcentralen om två veckor",),
    "changed": (
        "Dosen sänkt under vårdtiden på grund av lågt blodtryck",
        "Dosen höjd efter provsvar",
    ),
    "stopped": (
        "Utsatt under vårdtiden, ersätts av Eliquis",
        "Utsatt på grund av yrsel och ökad fallrisk",
    ),
    "unchanged": (),
}
TAKECARE_CONTEXTS = ("admission", "discharge")
ADMINISTERED_BY = ("home-care", "home-care", "patient", "relative", "hospital")
STATUSES = ("active", "active", "active", "paused", "stopped")
HOME_CARE_ADMINISTERED_BY = ("home-care", "home-care", "home-care", "patient", "relative")
STATUS = {"active": "aktiv", "paused": "pausad", "stopped": "utsatt"}
ANDRING = {"started": "insatt", "stopped": "utsatt", "changed": "andrad", "unchanged": "oforandrad"}
ADMINISTRERAS_AV = {
    "home-care": "hemsjukvard",
    "patient": "patient",
    "relative": "narstaende",
    "hospital": "sjukhus",
}


def _line(rng: random.Random, *, context: str, start: datetime) -> dict[str, Any]:
    """One line in TakeCare's (English) shape."""
    item: dict[str, Any]
    if rng.random() < 0.08:
        name, text = rng.choice(TEXT_ONLY)
        item = {"name": name, "dosage": {"text": text}}
    else:
        m = rng.choice(MEDICINES)
        times, schedule = rng.choice(SCHEDULES[m.per_day])
        unit_text = {"ug": "mikrogram", "st": "tablett"}.get(m.dose_unit, m.dose_unit)
        dose_text = f"{m.dose_value:g} {unit_text} {schedule}".replace(".", ",")
        item = {"nplId": m.npl_id, "atcCode": m.atc, "name": m.name, "dosage": {"text": dose_text}}
        if rng.random() < 0.5:
            item["nplPackId"] = m.npl_pack_id
        if rng.random() < 0.9:
            item |= {"strength": m.strength, "form": m.form}
        if rng.random() < 0.75:
            dose = {"value": m.dose_value, "unit": m.dose_unit}
            item["dosage"] |= {"dose": dose, "timesPerDay": m.per_day}
            if rng.random() < 0.7:
                item["dosage"]["timesOfDay"] = list(times)
        if rng.random() < 0.7:
            item["reason"] = m.reason
        _as_needed(rng, item, m)
    status = rng.choice(STATUSES) if context != "admission" else "active"
    item["status"] = status
    by = HOME_CARE_ADMINISTERED_BY if context == "home-care" else ADMINISTERED_BY
    item["administeredBy"] = rng.choice(by)
    if rng.random() < 0.6:
        item["startDate"] = (start - timedelta(days=rng.randint(0, 900))).date().isoformat()
    if status == "stopped":
        item["endDate"] = start.date().isoformat()
    if context != "admission" and (status != "active" or rng.random() < 0.2):
        item["changeNote"] = rng.choice(CHANGE_NOTES[status])
    _dispensing_prescriber_change(rng, item, context=context)
    return item


def _as_needed(rng: random.Random, item: dict[str, Any], m: Medicine) -> None:
    """Make about one line in five "vid behov", with a condition and a maximum dose per day;
    mark some others as explicitly scheduled."""
    dosage = item["dosage"]
    if rng.random() >= 0.2:
        if rng.random() < 0.3:
            dosage["asNeeded"] = False
        return
    for scheduled in ("timesPerDay", "timesOfDay"):
        dosage.pop(scheduled, None)
    dosage["asNeeded"] = True
    condition = ""
    if rng.random() < 0.8:
        text, snomed = rng.choice(AS_NEEDED_CONDITIONS)
        dosage["asNeededCondition"] = {"text": text} | ({"snomedCode": snomed} if snomed else {})
        condition = f" {text}"
    times = rng.choice((3, 4, 6))
    limit = ""
    if rng.random() < 0.7:
        dosage["maxDose"] = {"value": m.dose_value * times, "unit": m.dose_unit, "periodHours": 24}
        limit = f", högst {times} gånger per dygn"
    dose = f"{m.dose_value:g} {m.dose_unit}".replace(".", ",")
    dosage["text"] = f"{dose} vid behov{condition}{limit}"


def _dispensing_prescriber_change(
    rng: random.Random, item: dict[str, Any], *, context: str
) -> None:
    if rng.random() < 0.5:
        item["doseDispensed"] = rng.random() < 0.5
    if rng.random() < 0.6:
        hsa, name = rng.choice(PRESCRIBERS)
        item["prescriber"] = {"hsaId": hsa} | ({"name": name} if rng.random() < 0.8 else {})
    if context == "admission" or rng.random() < 0.3:
        return
    status = item["status"]
    kinds = ("stopped",) if status == "stopped" else ("started", "changed", "unchanged")
    kind = rng.choice(kinds)
    change: dict[str, Any] = {"type": kind}
    if CHANGE_REASONS[kind] and (kind != "started" or rng.random() < 0.5):
        change["reason"] = rng.choice(CHANGE_REASONS[kind])
    item["change"] = change


def _lines(rng: random.Random, lines: int | None, *, context: str, at: datetime) -> list[Any]:
    count = lines if lines is not None else (0 if rng.random() < 0.1 else rng.randint(1, 12))
    return [_line(rng, context=context, start=at) for _ in range(count)]


def sample_takecare_medication_list(
    rng: random.Random,
    *,
    now: datetime,
    lines: int | None = None,
    list_id: str | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """A list TakeCare pushes: the current list at admission or the updated one at discharge."""
    local_now = now.astimezone(STOCKHOLM)
    context = rng.choice(TAKECARE_CONTEXTS)
    doc: dict[str, Any] = {
        "eventId": f"tc-{rng.getrandbits(48):012x}",
        "listId": list_id or f"LML-{rng.randint(100000, 999999)}",
        "version": version,
        "context": context,
        "occurredAt": local_now.isoformat(timespec="seconds"),
        "patient": takecare_patient(rng),
        "consentBasis": takecare_consent_basis(now),
        "unit": takecare_unit(rng),
    }
    if rng.random() < 0.8:
        doc["encounterId"] = f"VT-{rng.randint(100000, 999999)}"
    doc["items"] = _lines(rng, lines, context=context, at=local_now)
    return doc


def sample_treserva_medication_list(
    rng: random.Random,
    *,
    now: datetime,
    lines: int | None = None,
    list_id: str | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """A list Treserva pushes: what home care administers (sammanhang hemsjukvard)."""
    local_now = now.astimezone(STOCKHOLM)
    doc: dict[str, Any] = {
        "meddelandeId": f"trs-{rng.getrandbits(48):012x}",
        "listaId": list_id or f"HSL-{rng.randint(10000, 99999)}",
        "version": version,
        "sammanhang": "hemsjukvard",
        "tidpunkt": local_now.isoformat(timespec="seconds"),
        "brukare": treserva_brukare(rng),
        "samtyckesgrund": treserva_samtyckesgrund(now),
        "enhet": treserva_enhet(rng),
    }
    if rng.random() < 0.3:
        doc["vardtillfalleId"] = f"VT-{rng.randint(100000, 999999)}"
    doc["rader"] = [_rad(item) for item in _lines(rng, lines, context="home-care", at=local_now)]
    return doc


def _rad(item: dict[str, Any]) -> dict[str, Any]:
    """A TakeCare-shaped line in Treserva's (Swedish) shape."""
    d = item["dosage"]
    dosering: dict[str, Any] = {"text": d["text"]}
    if "dose" in d:
        dosering["dos"] = {"varde": d["dose"]["value"], "enhet": d["dose"]["unit"]}
    if "timesPerDay" in d:
        dosering["antalPerDygn"] = d["timesPerDay"]
    if "timesOfDay" in d:
        dosering["klockslag"] = d["timesOfDay"]
    if "asNeeded" in d:
        dosering["vidBehov"] = d["asNeeded"]
    if "asNeededCondition" in d:
        c = d["asNeededCondition"]
        dosering["vidBehovVillkor"] = {"text": c["text"]} | (
            {"snomedKod": c["snomedCode"]} if "snomedCode" in c else {}
        )
    if "maxDose" in d:
        m = d["maxDose"]
        dosering["maxDos"] = {"varde": m["value"], "enhet": m["unit"], "periodTimmar": 24}
    renamed = {
        "nplId": "nplId",
        "nplPackId": "nplPackId",
        "atcCode": "atcKod",
        "name": "namn",
        "strength": "styrka",
        "form": "form",
        "startDate": "startdatum",
        "endDate": "slutdatum",
        "reason": "orsak",
        "changeNote": "andringsnotering",
        "doseDispensed": "dosdispenserad",
    }
    rad = {swedish: item[english] for english, swedish in renamed.items() if english in item}
    if "prescriber" in item:
        p = item["prescriber"]
        rad["forskrivare"] = {"hsaId": p["hsaId"]} | ({"namn": p["name"]} if "name" in p else {})
    if "change" in item:
        c = item["change"]
        rad["andring"] = {"typ": ANDRING[c["type"]]} | (
            {"orsak": c["reason"]} if "reason" in c else {}
        )
    rad |= {
        "dosering": dosering,
        "status": STATUS[item["status"]],
        "administrerasAv": ADMINISTRERAS_AV[item["administeredBy"]],
    }
    return rad
