from collector.config.units import Duration
from collector.delivery.backoff import MAX_RETRY_AFTER, next_delay
from collector.destinations.base import RetryConfig

POLICY = RetryConfig(initial_backoff=Duration(1), max_backoff=Duration(60))


def test_grows_exponentially_with_jitter_and_is_capped():
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (40, 60)]:
        delays = [next_delay(POLICY, attempt, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not fixed


def test_retry_after_is_a_floor_and_is_capped():
    assert next_delay(POLICY, 1, 30) >= 30
    assert next_delay(POLICY, 1, 10_000) <= MAX_RETRY_AFTER
