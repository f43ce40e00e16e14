from __future__ import annotations

from airflow_provider_pixverse._api.listing import SpeechListing


def page(first: int, count: int, *, has_more: bool) -> dict[str, object]:
    clips = [{"audio_id": f"id-{n}"} for n in range(first, first + count)]
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
    assert [c.audio_id for c in listing.result()][-1] == "id-119"


def test_stops_asking_once_it_has_max_items() -> None:
    listing = SpeechListing(max_items=60)
    requests_made = 0
    while (request := listing.next_request()) is not None:
        requests_made += 1
        listing.add_page(page(int(request.params["offset"]), 50, has_more=True))
    assert requests_made == 2
    assert len(listing.result()) == 60
