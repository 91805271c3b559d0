"""The Swedish calendar of working days: public holidays, the eves treated as holidays, and
weekends, with day boundaries in Europe/Stockholm. Pure: no clock, no I/O.

Which days are **not working days** (:func:`is_working_day` is False), and why:

* Saturdays and Sundays.
* The public holidays of lagen (1989:253) om allmänna helgdagar that can fall on a weekday:
  nyårsdagen (1 Jan), trettondedag jul (6 Jan), långfredagen (Good Friday), annandag påsk
  (Easter Monday), första maj (1 May), Kristi himmelsfärdsdag (Easter + 39 days),
  nationaldagen (6 Jun), juldagen (25 Dec) and annandag jul (26 Dec). Påskdagen,
  pingstdagen, midsommardagen (the Saturday between 20 and 26 June) and alla helgons dag
  (the Saturday between 31 October and 6 November) are listed too, for completeness: they
  always fall on a weekend.
* The eves midsommarafton (the Friday between 19 and 25 June), julafton (24 Dec) and
  nyårsafton (31 Dec). They are not public holidays in law, but the Working Hours Act
  (arbetstidslagen 1982:673, 5 §) treats them as holidays and in practice the hospital's
  and the municipality's offices are closed; agreements that count working days count
  them as non-working. Påskafton, pingstafton and trettondagsafton fall on a Saturday or
  are ordinary working days, and are left out.

Easter is the Gregorian computus (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday of ``year`` (påskdagen)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def midsummer_eve(year: int) -> date:
    """Midsommarafton: the Friday between 19 and 25 June."""
    return next(date(year, 6, d) for d in range(19, 26) if date(year, 6, d).weekday() == 4)


def all_saints_day(year: int) -> date:
    """Alla helgons dag: the Saturday between 31 October and 6 November."""
    first = date(year, 10, 31)
    return next(d for d in (first + timedelta(days=i) for i in range(7)) if d.weekday() == 5)


@cache
def swedish_holidays(year: int) -> frozenset[date]:
    """The days of ``year`` that are holidays in law or treated as such (see the module
    docstring), weekends aside."""
    easter = easter_sunday(year)
    eve = midsummer_eve(year)
    return frozenset(
        {
            date(year, 1, 1),  # nyårsdagen
            date(year, 1, 6),  # trettondedag jul
            easter - timedelta(days=2),  # långfredagen
            easter,  # påskdagen
            easter + timedelta(days=1),  # annandag påsk
            date(year, 5, 1),  # första maj
            easter + timedelta(days=39),  # Kristi himmelsfärdsdag
            easter + timedelta(days=49),  # pingstdagen
            date(year, 6, 6),  # nationaldagen
            eve,  # midsommarafton (treated as a holiday)
            eve + timedelta(days=1),  # midsommardagen
            all_saints_day(year),  # alla helgons dag
            date(year, 12, 24),  # julafton (treated as a holiday)
            date(year, 12, 25),  # juldagen
            date(year, 12, 26),  # annandag jul
            date(year, 12, 31),  # nyårsafton (treated as a holiday)
        }
    )


def is_working_day(day: date) -> bool:
    """A weekday that is neither a holiday nor an eve treated as one."""
    return day.weekday() < 5 and day not in swedish_holidays(day.year)


def local_date(at: datetime) -> date:
    """The Stockholm calendar day of an aware instant (DST-safe: a day is a local date,
    never 24 hours)."""
    return at.astimezone(STOCKHOLM).date()
