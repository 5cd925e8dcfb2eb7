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


# Every move, written out from the model's rules (the module's docstring, ARCHITECTURE.md's
# flow): Q queued, S sending, T sent, D delivered, U undelivered, F failed, E expired,
# K unknown, C cancelled, R unreachable (the channel has no way to this person), B standby
# (a later channel's message, waiting for the one before), N unneeded (spared: the channel
# before reached the person). A row is "from", its letters the statuses it may move to.
# Queued: claimed, expired, refused before a claim (failed), cancelled by an operator, or
# spared (a late delivery on the channel before came while it waited).
# Sending: released (queued), sent, or any final status (a receipt may overtake the answer;
# cancelled is a released claim whose campaign was cancelled meanwhile; unneeded, a later
# channel's message claimed after the channel before reached the person).
# Sent: any final status but cancelled (what was handed over cannot be cancelled) and
# unreachable (a channel says so when asked to send, never afterwards).
# Unknown: corrected by a real outcome only. The other final statuses: nowhere.
EXPECTED_MOVES = {
    "Q": "SFECN",
    "S": "QTDUFEKCRN",
    "T": "DUFEK",
    "K": "DUFE",
    "D": "",
    "U": "",
    "F": "",
    "E": "",
    "C": "",
    "R": "",
    "B": "QNCE",
    "N": "",
}
LETTERS = dict(zip("QSTDUFEKCRBN", list(Status), strict=True))


@pytest.mark.parametrize("old", list(Status))
@pytest.mark.parametrize("new", list(Status))
def test_each_move_of_the_model_one_by_one(old, new):
    """All 144 pairs, so that adding or dropping any single move fails one test."""
    letter = {status: key for key, status in LETTERS.items()}
    assert can_move(old, new) == (letter[new] in EXPECTED_MOVES[letter[old]])


def test_the_letters_name_every_status_in_order():
    assert [s.value for s in LETTERS.values()] == [
        "queued", "sending", "sent", "delivered", "undelivered", "failed", "expired",
        "unknown", "cancelled", "unreachable", "standby", "unneeded",
    ]  # fmt: skip
