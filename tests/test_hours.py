"""Opening hours: real warm-space strings read or left as text, descriptions, open-at answers."""

from datetime import date, datetime

import pandas as pd
import pytest

from kindred_map import hours

WEEKDAYS = "MO,TU,WE,TH,FR"

# (hours_text, hours_osm) exactly as in openinnovations_warm_spaces/warm_spaces_region.csv,
# and the schedules expected as (byday, opens_at, closes_at) triples; () = stays text.
REAL_LISTINGS = [
    ("Friday: 10:30 - 13:30", "Fr 10:30-13:30", [("FR", "10:30", "13:30")]),
    (
        "Monday: 09:00 - 19:00, Wednesday: 09:00 - 17:00, Thursday: 09:00 - 13:00, "
        "Friday: 09:00 - 17:00, Saturday: 09:00 - 13:00",
        "Mo 09:00-19:00; We 09:00-17:00; Th 09:00-13:00; Fr 09:00-17:00; Sa 09:00-13:00",
        [
            ("MO", "09:00", "19:00"),
            ("WE,FR", "09:00", "17:00"),
            ("TH,SA", "09:00", "13:00"),
        ],
    ),
    (
        "Monday 11am-1pm; Wednesday 11am-1pm",
        "Mo 11:00-13:00; We 11:00-13:00",
        [("MO,WE", "11:00", "13:00")],
    ),
    ("Tuesdays 9am to 1pm", "Tu 09:00-13:00", [("TU", "09:00", "13:00")]),
    ("Thursday 11.30am-3pm", "Th 11:30-15:00", [("TH", "11:30", "15:00")]),
    ("Tuesday 1.30pm - 4.30pm", "Tu 13:30-16:30", [("TU", "13:30", "16:30")]),
    (
        "Thursday: 13:30 - 14:30, Friday: 10:00 - 12:00 / 13:00 - 14:00",
        "Th 13:30-14:30; Fr 10:00-12:00,13:00-14:00",
        [("TH", "13:30", "14:30"), ("FR", "10:00", "12:00"), ("FR", "13:00", "14:00")],
    ),
    (
        "Monday 10am until 7pm\nTuesday 10am until 7pm\nWednesday 10am until 8pm\n"
        "Thursday 9:30am until 5:30pm\nFriday 10am until 5pm\nSaturday 9:30am until 4pm",
        "Mo 10:00-19:00; Tu 10:00-19:00; We 10:00-20:00; Th 09:30-17:30; Fr 10:00-17:00; "
        "Sa 09:30-16:00",
        [
            ("MO,TU", "10:00", "19:00"),
            ("WE", "10:00", "20:00"),
            ("TH", "09:30", "17:30"),
            ("FR", "10:00", "17:00"),
            ("SA", "09:30", "16:00"),
        ],
    ),
    # Monthly or fortnightly: which week is not said
    ("Saturday: 10:00 - 12:00 Monthly", "Sa 10:00-12:00", []),
    (
        "Thursday: 10:00 - 13:30, Saturday: 10:30 - 13:00 Monthly",
        "Th 10:00-13:30; Sa 10:30-13:00",
        [],
    ),
    # a 12-hour clock in a 24-hour field: the OSM reading guesses 15:00, we do not
    ("Tuesday: 10:00 - 01:00", "Tu 10:00-13:00", []),
    ("Wednesday: 01:30 - 03:30", "We 01:30-03:30", []),
    # no am/pm or minutes
    ("Wednesday 12 - 2", "We 12:00-14:00", []),
    ("Thursday 12am-4pm", "Th 12:00-16:00", []),
    # words we do not read; a day both open and closed; closed all day as 00:00 - 00:00
    ("Monday - Saturday 9am-4pm (Fridays 10-12noon Coffee & Chat)", "Mo-Sa 09:00-16:00", []),
    (
        "Monday 9am-9pm\nTuesday 9am-9pm\nWednesday 8am-9:30pm\nThursday 9am-8:30pm\n"
        "Friday 9am-8:00pm\nSunday 9am-3pm\nSunday Closed\n",
        "Mo 09:00-21:00; Tu 09:00-21:00; We 08:00-21:30; Th 09:00-20:30; Fr 09:00-20:00; "
        "Su 09:00-15:00",
        [],
    ),
    (
        "Monday: 10:00 - 18:00, Tuesday: 00:00 - 00:00, Wednesday: 10:00 - 18:00",
        "Mo 10:00-18:00; Tu 00:00-00:00; We 10:00-18:00",
        [],
    ),
    (
        "Monday 10am-5pm; Tuesday 10am-5pm; Wednesday 10am-5pm; Thursday Basic Hub - 10am-5pm "
        "/ Enhanced Hub 11am-3pm; Friday 10am-5pm; Saturday 10am-1pm",
        "Mo 10:00-17:00; Tu 10:00-17:00; We 10:00-17:00; Fr 10:00-17:00; Sa 10:00-13:00",
        [],
    ),
    ("", "", []),
]


@pytest.mark.parametrize(("text", "osm", "expected"), REAL_LISTINGS)
def test_real_warm_space_hours(text, osm, expected):
    found = hours.parse_listing(text, osm)
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in found] == expected
    if not expected:
        assert hours.describe(found, text).startswith("hours unknown")


def test_issue_examples_parse():
    assert hours.parse("Mon-Fri 10:00-14:00") == [hours.schedule(WEEKDAYS, "10:00", "14:00")]
    assert hours.parse("Tuesdays 1pm-3pm") == [hours.schedule("TU", "13:00", "15:00")]
    assert hours.parse("Mo-Fr 10:00-14:00; Sa 10:00-12:00") == [
        hours.schedule(WEEKDAYS, "10:00", "14:00"),
        hours.schedule("SA", "10:00", "12:00"),
    ]
    assert hours.parse("Fri-Mon 10:00-12:00") == []  # wraps the week: not read


def test_osm_reading_must_agree_with_the_text():
    assert hours.parse_listing("Friday: 10:30 - 13:30", "Fr 10:30-14:30") == []
    assert hours.parse_listing("Friday: 10:30 - 13:30", "") == hours.parse("Fr 10:30-13:30")


def test_describe_and_round_trip():
    schedules = hours.parse("Mon-Fri 10:00-14:00; Sat 10am-12 noon")
    assert hours.describe(schedules) == "Mon–Fri 10:00–14:00; Sat 10:00–12:00"
    assert hours.loads(hours.dumps(schedules)) == schedules
    assert hours.describe(hours.dumps(schedules)) == hours.describe(schedules)
    assert hours.describe("", "Wednesday 12 - 2") == "hours unknown (listed as: Wednesday 12 - 2)"
    assert hours.describe([]) == "hours unknown"
    seasonal = [hours.schedule("SA", "10:00", "12:00", "2025-11-01", "2026-03-31")]
    assert hours.describe(seasonal) == "Sat 10:00–12:00 (2025-11-01 to 2026-03-31)"


def test_describe_projects_gives_a_line_per_project():
    projects = pd.DataFrame(
        {
            "schedules": [hours.dumps(hours.parse("Tuesdays 1pm-3pm")), "", None],
            "opening_hours": ["Tuesdays 1pm-3pm", "Wednesday 12 - 2", None],
        }
    )
    assert hours.describe_projects(projects).tolist() == [
        "Tue 13:00–15:00",
        "hours unknown (listed as: Wednesday 12 - 2)",
        "hours unknown",
    ]
    for spec in hours.OPEN_CHOICES:
        assert hours.window(spec).days


def test_day_names_inside_words_are_not_days():
    assert hours.parse("Lemon 10:00-12:00") == []
    assert hours.parse("Open with 10am-2pm") == []


def test_open_at_and_windows():
    schedules = hours.parse("Mon-Fri 10:00-14:00; Sat 10:00-12:00")
    saturday = datetime(2025, 11, 29, 10, 0)  # a Saturday
    assert hours.open_at(schedules, saturday) is True
    assert hours.open_at(schedules, saturday.replace(hour=12)) is False  # closes at 12:00
    assert hours.open_at(schedules, datetime(2025, 11, 30, 11)) is False  # Sunday
    assert hours.open_at([], saturday) is None
    assert hours.open_during(schedules, hours.window("weekend")) is True
    assert hours.open_during(schedules, hours.window("evening")) is False
    late = hours.parse("Tue 16:00-17:30")
    assert hours.open_during(late, hours.window("evening")) is True
    assert hours.open_during(hours.parse("Tue 15:00-17:00"), hours.window("evening")) is False
    assert hours.window("Saturday 2pm").start == "14:00"
    assert hours.open_during(schedules, hours.window("saturday")) is True
    assert hours.open_during(schedules, hours.window("sun")) is False
    seasonal = [hours.schedule("SA", "10:00", "12:00", "2025-11-01", "2026-03-31")]
    assert hours.open_at(seasonal, datetime(2025, 11, 29, 10)) is True
    assert hours.open_at(seasonal, datetime(2026, 5, 2, 10)) is False
    assert hours.open_during(seasonal, hours.window("sat 10:00", on=date(2026, 5, 2))) is False
    assert hours.open_during(seasonal, hours.window("sat 10:00")) is True


@pytest.mark.parametrize("spec", ["", "someday", "sat 25:00", "monthly", "sat 10"])
def test_bad_window_says_what_to_give(spec):
    with pytest.raises(ValueError, match="weekend"):
        hours.window(spec)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("XX", "10:00", "12:00"), "byday"),
        (("MO", "10", "12:00"), "opens_at"),
        (("MO", "12:00", "10:00"), "after"),
        (("MO", "10:00", "12:00", "2025-13-01"), "valid_from"),
    ],
)
def test_bad_schedules_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        hours.schedule(*arguments)


def test_fill_schedules_keeps_given_parses_text_and_warns_on_bad():
    records = pd.DataFrame(
        {
            "row": [2, 3, 4, 5],
            "name": ["a", "b", "c", "d"],
            "opening_hours": ["Tuesdays 1pm-3pm", "Wednesday 12 - 2", "", "Mon 9am-1pm"],
            "schedules": ["", "", hours.dumps(hours.parse("Sa 10:00-12:00")), "[{oops"],
        }
    )
    filled, issues = hours.fill_schedules(records)
    assert hours.loads(filled["schedules"][0]) == hours.parse("Tuesdays 1pm-3pm")
    assert filled["schedules"][1] == ""
    assert hours.loads(filled["schedules"][2]) == hours.parse("Sa 10:00-12:00")
    assert hours.loads(filled["schedules"][3]) == hours.parse("Mon 9am-1pm")
    assert issues["row"].tolist() == [5]
    assert "not readable" in issues["reason"][0]
    assert "3 of 4" in hours.count_note(filled)
