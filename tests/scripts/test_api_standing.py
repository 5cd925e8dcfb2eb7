"""``GET /v1/campaigns/ID``'s counts shared (``scripts.api.standing``): one count a
second whoever asks, the last one served at once while a newer one is made, a change
made here never hidden behind an older count. A clock of the test's own: no sleeps."""

from __future__ import annotations

import threading

import pytest

from scripts.api import standing
from scripts.api.standing import Standings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(standing.time, "monotonic", found)
    return found


class Counter:
    """A campaign's count: how many times counted, each one held until let go."""

    def __init__(self) -> None:
        self.counted = 0
        self.go = threading.Event()
        self.go.set()
        self.began = threading.Event()

    def __call__(self, campaign_id: str) -> dict:
        self.counted += 1
        self.began.set()
        assert self.go.wait(30)
        return {"campaign": campaign_id, "count": self.counted}


def test_every_request_within_a_second_shares_one_count(clock):
    count = Counter()
    standings = Standings(count)
    first = standings.get("c")
    clock.now += standing.FRESH / 2
    again = [standings.get("c") for _ in range(20)]
    assert count.counted == 1 and all(a["count"] == 1 for a in again)
    assert again[-1]["age_seconds"] == pytest.approx(standing.FRESH / 2)
    assert first["as_of"] == again[0]["as_of"]
    # Asked fresh within the second of a count: that count (one a second, however many
    # ask it fresh); after it, counted now.
    assert all(standings.get("c", fresh=True)["count"] == 1 for _ in range(50))
    clock.now += standing.FRESH
    assert standings.get("c", fresh=True)["count"] == 2
    assert count.counted == 2
    standings.close()


def test_an_older_count_is_served_at_once_while_a_newer_one_is_made(clock):
    count = Counter()
    standings = Standings(count)
    standings.get("c")
    clock.now += standing.FRESH + 1
    count.go.clear()
    count.began.clear()
    served = standings.get("c")  # the new count is held: this does not wait for it
    assert served["count"] == 1 and served["age_seconds"] == pytest.approx(standing.FRESH + 1)
    assert count.began.wait(30)
    count.go.set()
    clock.now += standing.STALE + 1  # nobody asked for long: wait for a count
    assert standings.get("c")["count"] >= 2
    standings.close()


def test_a_change_made_here_is_never_hidden_by_a_count_from_before_it(clock):
    count = Counter()
    standings = Standings(count)
    standings.get("c")
    clock.now += standing.FRESH + 1
    count.go.clear()
    count.began.clear()
    standings.get("c")  # a newer count begins, and is held …
    assert count.began.wait(30)
    standings.forget("c")  # … while a pause lands
    count.go.set()
    after = standings.get("c")  # not the count begun before the pause
    assert after["count"] == 3 and after["age_seconds"] == 0.0
    standings.close()


def test_an_unknown_campaign_is_not_kept(clock):
    def refuse(campaign_id: str) -> dict:
        raise LookupError(campaign_id)

    standings = Standings(refuse)
    for _ in range(2):
        with pytest.raises(LookupError):
            standings.get("nowhere")
    standings.close()


class Versions:
    """A campaign's state as a cheap read sees it (``scripts.api.campaigns.version_of``)."""

    def __init__(self) -> None:
        self.state = "running"

    def __call__(self, campaign_id: str) -> str:
        return self.state


def test_a_change_made_elsewhere_is_never_hidden_by_an_older_count(clock):
    versions = Versions()
    counted: list[str] = []

    def count(campaign_id: str) -> dict:  # what the ledger says now
        counted.append(versions.state)
        return {"campaign": campaign_id, "state": versions.state}

    standings = Standings(count, versions)
    standings.get("c")
    clock.now += standing.FRESH + 1
    assert standings.get("c")["state"] == "running"  # unchanged: the older one served
    clock.now += standing.FRESH + 1
    versions.state = "paused"  # another process paused it: no count from before is served
    after = standings.get("c")
    assert after["state"] == "paused" and after["age_seconds"] == 0.0
    versions.state = "running"  # resumed elsewhere: within the second it may be missed …
    assert standings.get("c")["state"] == "paused"
    assert standings.get("c", fresh=True)["state"] == "running"  # … never asked fresh
    clock.now += standing.FRESH
    assert standings.get("c")["state"] == "running"
    standings.close()


def test_a_caller_joining_a_count_under_way_is_told_its_age(clock):
    count = Counter()
    standings = Standings(count)
    count.go.clear()
    first: list[dict] = []
    asking = threading.Thread(target=lambda: first.append(standings.get("c")))
    asking.start()
    assert count.began.wait(30)
    clock.now += 0.25  # the count has run a quarter of a second when a second caller joins
    joined: list[dict] = []
    later = threading.Thread(target=lambda: joined.append(standings.get("c", fresh=True)))
    later.start()
    count.go.set()
    asking.join(30)
    later.join(30)
    assert count.counted == 1
    assert joined[0]["as_of"] == first[0]["as_of"]
    assert joined[0]["age_seconds"] == pytest.approx(0.25)
    standings.close()
