"""Per-feed politeness rules (pure): validators, Retry-After, backoff, due."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from transforms.feedstate import (FeedState, Politeness, backoff_seconds, is_due, next_state,
                                  retry_after_seconds)

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Politeness(base_delay_s=60, max_delay_s=3600)


@dataclass
class Result:
    status: int = 200
    headers: dict = field(default_factory=dict)
    error: str = None


def test_a_good_answer_keeps_its_validators_and_clears_failures():
    before = FeedState(consecutive_failures=3, next_fetch_at=NOW)
    after = next_state(before, Result(200, {"etag": '"v2"', "last-modified": "Sun, 01 Mar 2026 11:00:00 GMT"}), NOW)
    assert after == FeedState(etag='"v2"', last_modified="Sun, 01 Mar 2026 11:00:00 GMT", last_status=200,
                              last_fetched_at=NOW, next_fetch_at=None, consecutive_failures=0)


def test_a_200_without_validators_forgets_the_old_ones():
    after = next_state(FeedState(etag='"v1"', last_modified="x"), Result(200, {}), NOW)
    assert after.etag is None and after.last_modified is None


def test_a_304_keeps_the_validators_unless_it_sends_new_ones():
    before = FeedState(etag='"v1"', last_modified="Sat, 28 Feb 2026 00:00:00 GMT")
    assert next_state(before, Result(304), NOW).etag == '"v1"'
    refreshed = next_state(before, Result(304, {"etag": '"v1b"'}), NOW)
    assert refreshed.etag == '"v1b"' and refreshed.last_modified == before.last_modified
    assert refreshed.last_status == 304 and is_due(refreshed, NOW)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_or_as_a_date_defers_the_next_fetch(status):
    before = FeedState(etag='"v1"')
    after = next_state(before, Result(status, {"retry-after": "120"}, f"http_status: {status}"), NOW, POLICY)
    assert after.next_fetch_at == NOW + timedelta(seconds=120)
    assert after.etag == '"v1"' and after.consecutive_failures == 1 and after.last_status == status
    assert not is_due(after, NOW + timedelta(seconds=119)) and is_due(after, NOW + timedelta(seconds=120))
    dated = next_state(before, Result(status, {"retry-after": "Sun, 01 Mar 2026 12:30:00 GMT"}, "e"), NOW, POLICY)
    assert dated.next_fetch_at == NOW + timedelta(minutes=30)


def test_retry_after_is_capped_and_a_past_date_means_now():
    far = next_state(FeedState(), Result(429, {"retry-after": "999999"}, "e"), NOW, POLICY)
    assert far.next_fetch_at == NOW + timedelta(seconds=3600)
    past = next_state(FeedState(), Result(503, {"retry-after": "Sun, 01 Mar 2026 11:00:00 GMT"}, "e"), NOW, POLICY)
    assert past.next_fetch_at is None and is_due(past, NOW)


def test_unreadable_retry_after_falls_back_to_backoff():
    assert retry_after_seconds("soon", NOW) is None and retry_after_seconds(None, NOW) is None
    state = FeedState(consecutive_failures=1)
    after = next_state(state, Result(429, {"retry-after": "soon"}, "e"), NOW, POLICY)
    assert after.next_fetch_at == NOW + timedelta(seconds=60)


def test_backoff_doubles_up_to_the_cap_and_a_failing_feed_is_still_tried_at_the_cap():
    assert [backoff_seconds(n, POLICY) for n in range(1, 9)] == [0, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff_seconds(10_000, POLICY) == 3600
    state = FeedState()
    for _ in range(50):
        now = state.next_fetch_at or NOW
        assert is_due(state, now)
        state = next_state(state, Result(None, {}, "timeout: read"), now, POLICY)
    assert state.consecutive_failures == 50
    assert state.next_fetch_at - state.last_fetched_at == timedelta(seconds=3600)
    recovered = next_state(state, Result(200, {"etag": '"ok"'}), state.next_fetch_at, POLICY)
    assert recovered.consecutive_failures == 0 and recovered.next_fetch_at is None


def test_a_first_failure_is_retried_on_the_next_run():
    after = next_state(FeedState(etag='"v1"'), Result(500, {}, "http_status: 500"), NOW, POLICY)
    assert after.next_fetch_at is None and after.consecutive_failures == 1 and after.etag == '"v1"'


def test_naive_times_are_taken_as_utc():
    state = FeedState(next_fetch_at=datetime(2026, 3, 1, 12, 0))
    assert is_due(state, NOW) and not is_due(state, NOW - timedelta(seconds=1))
