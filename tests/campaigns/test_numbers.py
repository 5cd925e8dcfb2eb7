from hypothesis import given
from hypothesis import strategies as st

from campaigns.numbers import NumberSet

vietnamese = st.from_regex(r"\+84(3[2-9]|9[0-8]|8[1-9]|7[06-9]|5[2689])[0-9]{7}", fullmatch=True)
foreign = st.from_regex(r"\+(1|44|82|86)[0-9]{9,10}", fullmatch=True)


@given(st.lists(vietnamese | foreign, max_size=200))
def test_behaves_like_a_set(numbers):
    ours, reference = NumberSet(), set()
    for number in numbers:
        assert ours.add(number) == (number not in reference)
        reference.add(number)
    assert len(ours) == len(reference)
    assert sorted(ours) == sorted(reference)
    for number in list(reference)[:20]:
        ours.discard(number)
        assert number not in ours
    assert len(ours) == max(0, len(reference) - 20)


def test_edges_of_a_range():
    numbers = NumberSet(["+84320000000", "+84329999999"])
    assert "+84320000000" in numbers and "+84329999999" in numbers
    assert "+84320000001" not in numbers and "+84330000000" not in numbers
    assert 84320000000 not in numbers
