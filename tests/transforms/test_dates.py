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
