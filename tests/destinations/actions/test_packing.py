from collector.destinations.actions.packing import pack


def items(*sizes: int) -> list[tuple[int, bytes]]:
    return [(i, b"x" * size) for i, size in enumerate(sizes)]


def indexes(requests: list[list[tuple[int, bytes]]]) -> list[list[int]]:
    return [[i for i, _ in request] for request in requests]


def test_items_fill_each_body_up_to_the_limit_counting_the_envelope_and_commas():
    # overhead 10: two items of 5 and their comma make 21; a third would make 27
    assert indexes(pack(items(5, 5, 5, 5), 10, 21)) == [[0, 1], [2, 3]]
    assert indexes(pack(items(5, 5, 5, 5), 10, 20)) == [[0], [1], [2], [3]]


def test_order_is_kept_and_an_oversized_item_stands_alone():
    assert indexes(pack(items(3, 50, 3, 3), 2, 20)) == [[0], [1], [2, 3]]


def test_nothing_packs_into_nothing():
    assert pack([], 2, 20) == []
