import pytest

from campaigns.status import FINAL, Status, can_move, sources_of


@pytest.mark.parametrize("final", sorted(FINAL - {Status.UNKNOWN}))
def test_a_final_status_never_changes(final):
    assert not any(can_move(final, new) for new in Status)


def test_unknown_may_be_corrected_by_a_real_outcome_only():
    assert can_move(Status.UNKNOWN, Status.DELIVERED)
    assert not can_move(Status.UNKNOWN, Status.SENT)
    assert not can_move(Status.UNKNOWN, Status.QUEUED)


def test_a_late_sent_never_overwrites_delivered():
    assert not can_move(Status.DELIVERED, Status.SENT)


def test_a_receipt_may_overtake_the_send_answer():
    assert can_move(Status.SENDING, Status.DELIVERED)


def test_sources_agree_with_moves():
    for new in Status:
        assert set(sources_of(new)) == {old for old in Status if can_move(old, new)}
