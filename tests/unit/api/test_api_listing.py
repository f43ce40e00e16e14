from __future__ import annotations

import sys

import pytest

from airflow_provider_pixverse._api.listing import PageSizer, SpeechListing, describe_report
from airflow_provider_pixverse._api.response import AnswerTooLargeError

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


def test_entries_that_are_not_clips_of_the_account_are_skipped_and_reported_once_a_page() -> None:
    """One null (or number, string, object without a valid audio_id) in a page costs no other clip."""
    other = "user:2-pixverse:other@example.com-speech:1000000000"
    entries = [
        None,
        7,
        "clip",
        {},
        {"audio_id": "id-1"},
        {"audio_id": other},
        {"audio_id": cid(1)},
        {"audio_id": cid(2)},
    ]
    listing = SpeechListing(email="a@b.c", account="a@b.c")
    request = listing.next_request()
    assert request is not None
    report = listing.add_page({"data": entries, "next_offset": 8, "has_more": False})
    assert [c.audio_id for c in listing.result()] == [cid(1), cid(2)]
    assert (report.not_clips, report.other_accounts, report.offset) == (5, 1, 0)
    assert listing.reports == [report]
    assert "5 entries that are not clips and 1 clips of other accounts" in describe_report(report)


def test_the_floor_counts_only_while_clip_numbers_fall() -> None:
    """A listing sent oldest first reaches the watermark on its first page: it must read on to the last."""
    numbers = list(range(1, 121))  # oldest first; the watermark is at 0... and older clips come first
    listing = SpeechListing(email="a@b.c", page_size=40, down_to=0, account="a@b.c")
    while (request := listing.next_request()) is not None:
        offset = int(request.params["offset"])
        chunk = [{"audio_id": f"user:1-pixverse:a@b.c-speech:{n}"} for n in [0, *numbers][offset : offset + 40]]
        listing.add_page({"data": chunk, "next_offset": offset + 40, "has_more": offset + 40 < 121})
    assert len(listing.result()) == 121
    assert listing.covered_above is None  # read to the last page: every clip was listed

    falling = SpeechListing(email="a@b.c", page_size=40, down_to=TOP - 50, account="a@b.c")
    while (request := falling.next_request()) is not None:
        offset = int(request.params["offset"])
        falling.add_page(page(offset, 40, has_more=True))
    assert falling.pages == 2 and falling.covered_above == TOP - 80  # stopped at the watermark, newest first


def test_a_continued_listing_checks_it_goes_on_where_the_last_one_ended() -> None:
    listing = SpeechListing(email="a@b.c", down_to=0, account="a@b.c", start_offset=599, anchor=TOP - 599)
    request = listing.next_request()
    assert request is not None and request.params["offset"] == "599"
    listing.add_page(page(599, 50, has_more=True))
    assert not listing.broken and listing.last_seen == (648, TOP - 648)
    moved = SpeechListing(email="a@b.c", down_to=0, account="a@b.c", start_offset=599, anchor=TOP - 599)
    moved.next_request()
    moved.add_page(page(605, 50, has_more=True))  # six clips deleted meanwhile: the listing moved under it
    assert moved.broken and moved.next_request() is None and moved.covered_above == sys.maxsize


def test_the_page_size_halves_on_a_page_over_the_cap_and_grows_back_on_small_pages() -> None:
    sizer = PageSizer(configured=50, max_bytes=1_000_000)
    listing = SpeechListing(email="a@b.c", sizer=sizer, max_items=500)
    too_large = AnswerTooLargeError("over the cap")
    limits = []
    while (request := listing.next_request()) is not None:
        limit = int(request.params["limit"])
        limits.append(limit)
        offset = int(request.params["offset"])
        if offset < 100 and limit * 30_000 > 1_000_000:  # the first 100 clips are 30 KB each
            listing.too_large(too_large)
            continue
        listing.add_page(page(offset, limit, has_more=True), limit * (30_000 if offset < 100 else 1_000))
    assert limits[:3] == [50, 25, 25]  # halved, that offset asked again; 25 x 30 KB fill 75 % of the cap
    assert max(limits[3:]) == 50 and limits[-1] == 50  # small clips: back up to the configured size
    assert [c.audio_id for c in listing.result()] == [cid(n) for n in range(500)]  # nothing skipped or repeated
    one = PageSizer(configured=1)
    with pytest.raises(AnswerTooLargeError):
        one.shrink(too_large)  # a page of one over the cap: that round's error


def listed_in_waves(concurrency: int, *, total: int, cut_to: int | None = None, **fields: object) -> SpeechListing:
    """A listing driven as the async hook drives it: waves of pages, answered, then taken in order."""
    listing = SpeechListing(email="a@b.c", account="a@b.c", page_size=20, **fields)  # type: ignore[arg-type]
    listing.asked_pages = 0  # type: ignore[attr-defined]
    while requests := listing.next_requests(concurrency):
        listing.asked_pages += len(requests)  # type: ignore[attr-defined]
        for request in requests:
            if not listing.takes(request):
                break
            offset, limit = int(request.params["offset"]), int(request.params["limit"])
            count = max(0, min(limit, cut_to or limit, total - offset))
            listing.add_page(page(offset, count, has_more=offset + count < total), request=request)
    return listing


@pytest.mark.parametrize(
    "fields",
    [
        {"wanted": frozenset({cid(5), cid(77), cid(133)})},
        {"wanted": frozenset({cid(5), "missing"})},
        {"down_to": TOP - 150},
        {"wanted": frozenset({cid(30)}), "down_to": TOP - 90},
        {"max_items": 70},
    ],
)
@pytest.mark.parametrize("cut_to", [None, 15])
def test_pages_fetched_in_waves_make_the_listing_one_page_at_a_time_makes(
    fields: dict[str, object], cut_to: int | None
) -> None:
    """The stop rules keep their meaning: the same clips, the same coverage, never more than max_pages asked."""
    one = listed_in_waves(1, total=1000, cut_to=cut_to, **fields)
    waves = listed_in_waves(4, total=1000, cut_to=cut_to, **fields)
    assert [c.audio_id for c in waves.result()] == [c.audio_id for c in one.result()]
    assert (waves.covered_above, waves.last_seen, waves.pages) == (one.covered_above, one.last_seen, one.pages)
    assert waves.asked_pages <= one.asked_pages + 3  # a wave asks for at most concurrency - 1 pages too many
    if one.max_pages is not None:
        assert waves.asked_pages * 20 <= one.max_pages * 20 + 3 * 20


def test_a_wave_begins_with_one_page_then_asks_for_what_the_wanted_clips_fill() -> None:
    wanted = frozenset({cid(n) for n in range(0, 100, 10)})
    listing = SpeechListing(email="a@b.c", page_size=20, wanted=wanted, max_pages=10)
    assert [r.params["offset"] for r in listing.next_requests(8)] == ["0"]
    listing.add_page(page(0, 20, has_more=True))
    # clips down to number TOP - 90 are wanted: 70 more clips, four pages of 20, however many could be asked for
    assert [r.params["offset"] for r in listing.next_requests(8)] == ["20", "40", "60", "80"]


def test_a_page_the_api_cut_short_sets_the_page_size_and_a_refused_limit_falls_back_to_50() -> None:
    sizer = PageSizer(configured=100, max_bytes=10**9)
    sizer.seen(30, 3_000, asked=100, more=True)
    assert (sizer.cap, sizer.size) == (30, 30)
    sizer.seen(30, 3_000, asked=30, more=True)
    assert sizer.size == 30  # never grows over what the API sends
    last = PageSizer(configured=100, max_bytes=10**9)
    last.seen(30, 3_000, asked=100, more=False)  # the last page: nothing learnt
    assert (last.cap, last.size) == (None, 100)
    refused = PageSizer(configured=100)
    assert refused.refused(100) and refused.size == 50
    assert not refused.refused(50)  # the documented page itself refused: the error stands
