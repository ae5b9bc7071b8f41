"""Beam timestamps for TestStream tests, from the datetimes the records carry."""
from datetime import datetime

from apache_beam.utils.timestamp import Timestamp

from transforms.feedstate import as_utc


def to_timestamp(when: datetime) -> Timestamp:
    """`when` (naive: UTC) as a Beam Timestamp."""
    return Timestamp.from_utc_datetime(as_utc(when))
