"""Opening hours: structured weekly schedules, read from free text only where it is unambiguous.

A project's ``schedules`` field is a list of ``{byday, opens_at, closes_at, valid_from,
valid_to, note}`` (stored as JSON text): ``byday`` is iCal/Open Referral day codes ("MO,WE"),
times are 24-hour "HH:MM" with ``opens_at < closes_at`` (no overnight sessions), ``valid_from``
/ ``valid_to`` optional ISO dates for seasonal hours. An empty list means the hours are not
known in structured form: the free text in ``opening_hours`` is kept as it was and shown with
"hours unknown". Nothing here guesses:

- Read: OpenStreetMap ``opening_hours`` rules ("Mo-Fr 10:00-14:00; Sa 10:00-12:00") and plain
  English ("Mon-Fri 10:00-14:00", "Tuesdays 1pm-3pm", "Monday: 09:00 - 19:00, Wednesday: ...").
- Left as text: anything with words the parser does not know ("Monthly", "2nd Wednesday",
  "(Fridays coffee & chat)", "term time"), times without minutes or am/pm ("12 - 2"), a
  session ending at or before it starts ("11:00 - 03:00"), one starting before 05:00 (a
  12-hour clock slip like "01:30 - 03:30"), and a day both open and "closed".
- Directories giving both the text and an OSM reading of it (the warm spaces' ``hours_osm``):
  both must parse and agree (`parse_listing`); the OSM reading alone is someone's
  interpretation (it silently drops "Monthly" and reads "11:00 - 03:00" as 15:00).
"""

import json
import re
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from kindred_map.report import issues_for

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
"""iCal (RFC 5545) day codes, as Open Referral's ``byday`` uses them, Monday first."""
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SCHEDULE_KEYS = ("byday", "opens_at", "closes_at", "valid_from", "valid_to", "note")
EARLIEST_OPENING = "05:00"
"""A session said to start earlier is taken as a 12-hour clock slip: the hours stay text."""
UNKNOWN = "hours unknown"
WEEKEND = ("SA", "SU")
OPEN_CHOICES = ("saturday", "sat 10:00", "sunday", "weekend", "evening")
"""Examples of `window` specs, for a dashboard control (any day and time is accepted)."""
EVENING = ("17:00", "21:00")
"""Coverage windows: ``weekend`` is any time on Saturday or Sunday; ``evening`` any time between
17:00 and 21:00 on any day (a project open 16:00-17:30 counts, one closing at 17:00 does not)."""

_DAY_WORDS = {
    "MO": ("monday", "mondays", "mon", "mo"),
    "TU": ("tuesday", "tuesdays", "tues", "tue", "tu"),
    "WE": ("wednesday", "wednesdays", "weds", "wed", "we"),
    "TH": ("thursday", "thursdays", "thurs", "thur", "thu", "th"),
    "FR": ("friday", "fridays", "fri", "fr"),
    "SA": ("saturday", "saturdays", "sat", "sa"),
    "SU": ("sunday", "sundays", "sun", "su"),
}
_DAY_OF = {word: code for code, words in _DAY_WORDS.items() for word in words}
_DAY = r"\b(?:" + "|".join(sorted(_DAY_OF, key=len, reverse=True)) + r")\b\.?"
_GROUPS = {"daily": DAYS, "every day": DAYS, "weekdays": DAYS[:5], "weekends": WEEKEND}
_GROUP = r"(?:every day|daily|weekdays|weekends)\b"
_TO = r"\s*(?:-|–|—|to|until|till)\s*"
_DAYSPEC = re.compile(
    rf"(?:{_GROUP}|{_DAY}(?:{_TO}{_DAY}|(?:\s*(?:,|&|and|/)\s*{_DAY})*))", re.IGNORECASE
)
_TIME = (
    r"(?:\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}[:.]\d{2}|noon|midday|12\s*noon)"
)
_RANGE = re.compile(rf"({_TIME}){_TO}({_TIME})", re.IGNORECASE)
_CLOSED = re.compile(r"^\s*:?\s*(?:closed|off)\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(r"^[\s:,;/&]*(?:and)?[\s:,;/&]*$", re.IGNORECASE)


def _minutes(text: str) -> int | None:
    """Minutes after midnight for "9:30", "9.30am", "1pm", "noon"; None when out of range."""
    text = text.lower().replace(" ", "").replace(".m.", "m")
    if text in ("noon", "midday", "12noon"):
        return 12 * 60
    match = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?(am|pm)?", text)
    if not match:
        return None
    hour, minute, half = int(match[1]), int(match[2] or 0), match[3]
    if minute > 59 or hour > (12 if half else 24) or (half and hour == 0):
        return None
    if hour == 24 and minute:
        return None
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    return hour * 60 + minute


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days(spec: str) -> tuple[str, ...]:
    """Day codes of a day spec: "Mon-Fri", "Tuesdays", "Mo,We & Fr", "weekdays"."""
    spec = spec.lower().strip()
    if spec in _GROUPS:
        return _GROUPS[spec]
    found = [_DAY_OF[word.rstrip(".")] for word in re.findall(_DAY, spec, re.IGNORECASE)]
    if re.search(_TO, spec) and len(found) == 2:
        start, end = DAYS.index(found[0]), DAYS.index(found[1])
        if end < start:
            return ()
        return DAYS[start : end + 1]
    return tuple(dict.fromkeys(found))


def parse(text) -> list[dict]:
    """Weekly schedules from opening-hours text, or [] when it is not unambiguous.

    ``[]`` means "keep the text, hours unknown"; it never means "closed"."""
    if text is None or not isinstance(text, str) or not text.strip():
        return []
    text = " ".join(text.replace("\u00a0", " ").split())
    starts = list(_DAYSPEC.finditer(text))
    if not starts or not _SEPARATOR.match(text[: starts[0].start()]):
        return []
    sessions: dict[str, set[tuple[int, int]]] = {}
    closed: set[str] = set()
    for position, match in enumerate(starts):
        end = starts[position + 1].start() if position + 1 < len(starts) else len(text)
        days = _days(match.group(0))
        rest = text[match.end() : end]
        if not days:
            return []
        if _CLOSED.match(rest.rstrip(",; ")):
            closed.update(days)
            continue
        ranges = list(_RANGE.finditer(rest))
        if not ranges:
            return []
        gaps = [rest[: ranges[0].start()]]
        gaps += [rest[a.end() : b.start()] for a, b in zip(ranges, ranges[1:], strict=False)]
        gaps.append(rest[ranges[-1].end() :])
        if not all(_SEPARATOR.match(gap) for gap in gaps):
            return []
        for found in ranges:
            opens, closes = _minutes(found[1]), _minutes(found[2])
            if opens is None or closes is None or closes <= opens:
                return []
            if _clock(opens) < EARLIEST_OPENING:
                return []
            for day in days:
                sessions.setdefault(day, set()).add((opens, closes))
    if not sessions or closed & set(sessions):
        return []
    return _grouped(sessions)


def _grouped(sessions: dict[str, set[tuple[int, int]]]) -> list[dict]:
    """One schedule per session time, listing its days in week order; sorted by day then time."""
    by_time: dict[tuple[int, int], list[str]] = {}
    for day in DAYS:
        for session in sorted(sessions.get(day, ())):
            by_time.setdefault(session, []).append(day)
    ordered = sorted(by_time.items(), key=lambda item: (DAYS.index(item[1][0]), item[0]))
    return [
        schedule(",".join(days), _clock(opens), _clock(closes)) for (opens, closes), days in ordered
    ]


def parse_listing(text, osm) -> list[dict]:
    """Schedules from a listing with free text and an OSM reading of it (warm spaces).

    The text decides; where an OSM string is given too it must say the same, else the hours
    stay text (one of the two is wrong and we cannot tell which)."""
    from_text = parse(text)
    if not from_text or not (isinstance(osm, str) and osm.strip()):
        return from_text
    return from_text if parse(osm) == from_text else []


def schedule(byday, opens_at, closes_at, valid_from="", valid_to="", note="") -> dict:
    """One checked schedule: raises ValueError naming what is wrong."""
    days = [day.strip().upper() for day in str(byday or "").split(",") if day.strip()]
    unknown = [day for day in days if day not in DAYS]
    if not days or unknown:
        raise ValueError(f"byday must list day codes from {','.join(DAYS)}, got {byday!r}")
    times = []
    for name, value in (("opens_at", opens_at), ("closes_at", closes_at)):
        match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::00)?", str(value or "").strip())
        if not match or int(match[1]) > 24 or int(match[2]) > 59:
            raise ValueError(f"{name} must be a time HH:MM, got {value!r}")
        times.append(f"{int(match[1]):02d}:{match[2]}")
    if times[1] <= times[0]:
        raise ValueError(f"closes_at {times[1]} must be after opens_at {times[0]}")
    dates = []
    for name, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        text = str(value or "").strip()
        if text:
            try:
                text = date.fromisoformat(text[:10]).isoformat()
            except ValueError as error:
                raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from error
        dates.append(text)
    if dates[0] and dates[1] and dates[1] < dates[0]:
        raise ValueError(f"valid_to {dates[1]} is before valid_from {dates[0]}")
    ordered = ",".join(day for day in DAYS if day in days)
    return dict(zip(SCHEDULE_KEYS, (ordered, *times, *dates, str(note or "")), strict=True))


def loads(value) -> list[dict]:
    """Schedules from the stored JSON text (or a list); blank gives []. Bad input: ValueError."""
    if value is None or (not isinstance(value, list | str) and value != value):
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"schedules are not valid JSON: {error}") from error
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("schedules must be a list of {byday, opens_at, closes_at, ...} objects")
    return [schedule(**{key: item.get(key, "") for key in SCHEDULE_KEYS}) for item in value]


def dumps(schedules: list[dict]) -> str:
    """The stored JSON text of schedules ("" when there are none)."""
    if not schedules:
        return ""
    return json.dumps([schedule(**s) for s in schedules], ensure_ascii=False, separators=(",", ":"))


def _day_text(byday: str) -> str:
    days = [DAYS.index(day) for day in byday.split(",")]
    runs, start = [], days[0]
    for previous, current in zip(days, [*days[1:], None], strict=True):
        if current != previous + 1 if current is not None else True:
            if previous - start >= 2:
                runs.append(f"{DAY_LABELS[start]}–{DAY_LABELS[previous]}")
            else:
                runs.extend(DAY_LABELS[start : previous + 1])
            start = current
    return ", ".join(runs)


def describe(schedules, text: str = "") -> str:
    """Hours in words for popups and tables: "Mon–Fri 10:00–14:00; Sat 10:00–12:00".

    Unknown hours give "hours unknown", followed by the listed text when there is one:
    "hours unknown (listed as: Wednesday 12 - 2)". The result is plain text: escape it."""
    try:
        items = loads(schedules)
    except ValueError:
        items = []
    if not items:
        listed = " ".join(str(text or "").split())
        return f"{UNKNOWN} (listed as: {listed})" if listed else UNKNOWN
    parts = []
    for item in items:
        words = f"{_day_text(item['byday'])} {item['opens_at']}–{item['closes_at']}"
        if item["valid_from"] or item["valid_to"]:
            words += f" ({item['valid_from'] or '…'} to {item['valid_to'] or '…'})"
        if item["note"]:
            words += f" ({item['note']})"
        parts.append(words)
    return "; ".join(parts)


def describe_projects(projects: pd.DataFrame) -> pd.Series:
    """`describe` for each project (its ``schedules`` and ``opening_hours``), for tables."""
    schedules = projects.get("schedules", pd.Series("", index=projects.index)).fillna("")
    text = projects.get("opening_hours", pd.Series("", index=projects.index)).fillna("")
    pairs = list(zip(schedules.astype(str), text.astype(str), strict=True))
    found = {pair: describe(*pair) for pair in set(pairs)}
    return pd.Series([found[pair] for pair in pairs], index=projects.index, dtype="str")


@dataclass(frozen=True)
class Window:
    """A time to ask "is it open then?": some days, from ``start`` to ``end`` ("HH:MM").

    ``start == end`` is a moment (open at it: opens_at <= moment < closes_at); otherwise open
    any time in it (overlap). ``on``: a date whose seasonal validity applies, or None to
    ignore valid_from/valid_to."""

    label: str
    days: tuple[str, ...]
    start: str
    end: str
    on: date | None = None


def window(spec: str, on: date | None = None) -> Window:
    """``"sat 10:00"``, ``"Saturday 2pm"``, ``"saturday"`` (any time that day), ``"weekend"``
    or ``"evening"`` as a Window."""
    text = " ".join(str(spec or "").lower().split())
    if text == "weekend":
        return Window("weekend (any time Saturday or Sunday)", WEEKEND, "00:00", "24:00", on)
    if text == "evening":
        label = f"evening (any time {EVENING[0]}-{EVENING[1]}, any day)"
        return Window(label, DAYS, *EVENING, on)
    if re.fullmatch(_DAY, text, re.IGNORECASE) and text.rstrip(".") in _DAY_OF:
        day = _DAY_OF[text.rstrip(".")]
        label = f"{DAY_LABELS[DAYS.index(day)]} (any time that day)"
        return Window(label, (day,), "00:00", "24:00", on)
    match = re.fullmatch(rf"({_DAY})\s+({_TIME})", text, re.IGNORECASE)
    moment = _minutes(match[2]) if match else None
    if match is None or moment is None or moment >= 24 * 60:
        raise ValueError(
            f"cannot read {spec!r} as a time: give a day and time ('sat 10:00', 'tue 2pm'), "
            "a day ('saturday'), 'weekend' or 'evening'"
        )
    day = _DAY_OF[match[1].rstrip(".")]
    clock = _clock(moment)
    return Window(f"{DAY_LABELS[DAYS.index(day)]} {clock}", (day,), clock, clock, on)


def _valid(item: dict, on: date | None) -> bool:
    if on is None:
        return True
    day = on.isoformat()
    return (not item["valid_from"] or item["valid_from"] <= day) and (
        not item["valid_to"] or day <= item["valid_to"]
    )


def open_during(schedules, when: Window) -> bool | None:
    """True if open at some time in the window, False if the schedules say closed, None if
    the hours are unknown (no structured schedules)."""
    try:
        items = loads(schedules)
    except ValueError:
        return None
    if not items:
        return None
    for item in items:
        if not _valid(item, when.on) or not set(item["byday"].split(",")) & set(when.days):
            continue
        if when.start == when.end:
            if item["opens_at"] <= when.start < item["closes_at"]:
                return True
        elif item["opens_at"] < when.end and item["closes_at"] > when.start:
            return True
    return False


def open_at(schedules, when: datetime) -> bool | None:
    """Open at this moment (its weekday, time and date)? None when the hours are unknown."""
    clock = f"{when.hour:02d}:{when.minute:02d}"
    day = DAYS[when.weekday()]
    moment = Window(f"{DAY_LABELS[when.weekday()]} {clock}", (day,), clock, clock, when.date())
    return open_during(schedules, moment)


def fill_schedules(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give each record its ``schedules`` (JSON text), for the import pipeline.

    Schedules the file gives are checked and kept; otherwise they are parsed from
    ``opening_hours`` where it is unambiguous. Unparsed hours are not an issue: the text stays
    and the project shows "hours unknown". Unreadable given schedules warn, naming the fault,
    and the text is parsed instead. Returns the records and the issues."""
    records = records.copy()
    given = records.get("schedules", pd.Series("", index=records.index)).fillna("").astype(str)
    text = records.get("opening_hours", pd.Series("", index=records.index)).fillna("")
    # Each distinct (schedules, opening_hours) pair is read once: a file repeats a few.
    given_codes, given_values = pd.factorize(given)
    text_codes, text_values = pd.factorize(text.astype(str))
    pairs, which = np.unique(given_codes * len(text_values) + text_codes, return_inverse=True)
    filled, faults, parsed = [], [], {}
    for pair in pairs.tolist():
        stored, listed = (
            given_values[pair // len(text_values)],
            text_values[pair % len(text_values)],
        )
        try:
            found = loads(stored)
            faults.append("")
        except (ValueError, TypeError) as error:
            faults.append(f"schedules not readable ({error}): hours read from opening_hours")
            found = []
        if not found and listed not in parsed:
            parsed[listed] = dumps(parse(listed))
        filled.append(dumps(found) if found else parsed[listed])
    records["schedules"] = np.asarray(filled, dtype=object)[which].tolist()
    reasons = pd.Series(np.asarray(faults, dtype=object)[which], index=records.index, dtype="str")
    bad = reasons.ne("").to_numpy()
    return records, issues_for(records[bad], "schedules", "warning", reasons[bad])


def count_note(records: pd.DataFrame) -> str:
    """The import report's line on hours: how many records got structured schedules."""
    schedules = records.get("schedules", pd.Series("", index=records.index, dtype=str))
    structured = int(schedules.fillna("").astype(str).str.strip().ne("").sum())
    return (
        f"opening hours: {structured} of {len(records)} project(s) have structured schedules; "
        "the others keep their text and show as 'hours unknown'"
    )
