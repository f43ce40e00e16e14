from __future__ import annotations

from airflow_provider_pixverse._api.listing import SpeechListing


TOP = 100_000


def cid(position: int) -> str:
    """The id of the clip at ``position`` of a newest-first listing."""
    return f"user:1-pixverse:a@b.c-speech:{TOP - position}"


def page(first: int, count: int, *, has_more: bool) -> dict[str, object]:
    clips = [{"audio_id": cid(n)} for n in range(first, first + count)]
    return {"data": clips, "next_offset": first + count, "has_more": has_more}


def test_follows_next_offset_until_the_last_page() -> None:
    listing = SpeechListing(email="a@b.c")
    offsets = []
    while (request := listing.next_request()) is not None:
        offsets.append(request.params["offset"])
        assert request.params["email"] == "a@b.c"
        last = int(request.params["offset"]) >= 100
        listing.add_page(page(int(request.params["offset"]), 20 if last else 50, has_more=not last))
    assert offsets == ["0", "50", "100"]
    assert [c.audio_id for c in listing.result()][-1] == cid(119)


def test_stops_asking_once_it_has_max_items() -> None:
    listing = SpeechListing(max_items=60)
    requests_made = 0
    while (request := listing.next_request()) is not None:
        requests_made += 1
        listing.add_page(page(int(request.params["offset"]), 50, has_more=True))
    assert requests_made == 2
    assert len(listing.result()) == 60


def pages_read(wanted: set[str], *, total: int, page_size: int = 50) -> int:
    listing = SpeechListing(email="a@b.c", page_size=page_size, wanted=frozenset(wanted))
    pages = 0
    while (request := listing.next_request()) is not None:
        pages += 1
        offset = int(request.params["offset"])
        assert request.params["limit"] == str(page_size)
        count = min(page_size, total - offset)
        listing.add_page(page(offset, count, has_more=offset + count < total))
    return pages


def test_a_listing_for_wanted_clips_stops_once_it_has_seen_them_all() -> None:
    assert pages_read({cid(3), cid(40)}, total=1000) == 1
    assert pages_read({cid(3), cid(140)}, total=1000) == 3
    assert pages_read({cid(n) for n in range(0, 200, 2)}, total=1000, page_size=20) == 10


def test_a_listing_for_wanted_clips_gives_up_after_twice_their_pages_and_two_more() -> None:
    """Clips it never sees (deleted, older than the pages scanned) are looked up one by one instead."""
    assert pages_read({cid(3), "missing"}, total=1000) == 4
    assert pages_read({f"missing-{n}" for n in range(120)}, total=10_000) == 8
    assert pages_read({"missing"}, total=30) == 1  # the last page comes first
