"""Feed dates (transforms/dates.py): the forms feeds really use, as aware UTC datetimes."""
import time
from datetime import datetime, timezone

from transforms.dates import parse_date, struct_to_utc

UTC = timezone.utc


def test_struct_to_utc():
    assert struct_to_utc(time.strptime("2021-09-29 03:04:05", "%Y-%m-%d %H:%M:%S")) == \
        datetime(2021, 9, 29, 3, 4, 5, tzinfo=UTC)
    assert struct_to_utc(None) is None


def test_dates_in_the_forms_feeds_really_use():
    assert parse_date("Wed, 29 Sep 2021 10:00:00 +0900") == datetime(2021, 9, 29, 1, tzinfo=UTC)
    assert parse_date("Fri,24 Nov 2023 18:28:36 -0000") == datetime(2023, 11, 24, 18, 28, 36, tzinfo=UTC)
    assert parse_date("2021-09-29T23:30:00-02:00") == datetime(2021, 9, 30, 1, 30, tzinfo=UTC)
    assert parse_date("2004-05-25 오후 11:23:17") == datetime(2004, 5, 25, 14, 23, 17, tzinfo=UTC)
    # never a date made up from today's clock
    assert parse_date("2013-xx-27") is None
    assert parse_date("not a date") is None and parse_date("") is None


def _shaped_dates():
    """Dates of the two shapes parse_date reads directly, and near misses:
    every field at and past its limits, zones named and numeric, odd case."""
    import itertools
    import random

    rng = random.Random(17)
    rfc822 = itertools.product(
        ["", "Mon, ", "sat, ", "THU, ", "Monday, ", "Xyz, "], ["1", "01", "29", "31", "00", "32", "123"],
        ["Jan", "feb", "NOV", "June", "Xyz"], ["2023", "2024", "0001", "9999", "23", "0000"],
        ["10:00:00", "00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60", "9:05:00", "10:00"],
        ["+0000", "-0000", "+0530", "-0930", "+05:30", "+9999", "GMT", "gmt", "UT", "UTC", "Z", "z", "EST",
         "edt", "PST", "A", "M", "Y", "MET", "MEST", "XYZ", "GMTA", "gmtm", "GMT+1", "GMT-05:00", "Etc/GMT", ""])
    w3dtf = itertools.product(
        ["2023", "0001", "9999", "0000", "20231"], ["-01", "-12", "-13", "-00", "-2"], ["-01", "-29", "-31", "-32"],
        ["T", "t", " "], ["10:00:00", "00:00:00", "23:59:59", "24:00:00", "23:59:60", "10:00"],
        ["", ".5", ".999999", ".99999999999999999", "."],
        ["", "Z", "z", "+01:00", "-05:30", "+0530", "-0100", "+1", "+24:00", "+99:99", "-23:59"])
    for day_name, day, month, year, clock, zone in rng.sample(list(rfc822), 6000):
        yield f"{day_name}{day} {month} {year} {clock} {zone}".strip()
    for year, month, day, t, clock, fraction, zone in rng.sample(list(w3dtf), 6000):
        yield f"{year}{month}{day}{t}{clock}{fraction}{zone}"
    yield "9999-12-31T23:59:59-01:00"      # past datetime's range once in UTC
    yield "Mon, 01 Jan 0001 00:00:00 +0100"
    yield "2023-12-31T23:59:59.99999999999999999Z"   # float() rounds the seconds to 60
    yield "  Wed, 29 Sep 2021 10:00:00 +0900\n"


def test_the_common_shapes_read_directly_give_what_feedparsers_handlers_give():
    from transforms.dates import _common_shape, parse_date_reference

    direct = 0
    for value in _shaped_dates():
        assert parse_date(value) == parse_date_reference(value), repr(value)
        direct += _common_shape(value.strip()) is not None
    assert direct > 400, direct   # the direct reading was exercised, not only the handlers
