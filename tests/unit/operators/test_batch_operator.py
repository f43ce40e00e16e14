

def test_a_create_whose_answer_was_lost_is_found_by_the_retry_not_sent_again(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow_provider_pixverse.exceptions import PixVerseConnectionError

    pixverse_sandbox.set_max_jobs(3, email=A)
    texts = corpus(3)
    store = MemoryStateStore()
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError):
        batch(texts, tmp_path, accounts={A: 3}).execute(context(store))
    saved = store.values[BATCH_STATE_KEY]["requests"]
    lost = [
        (request["names"][0], part)
        for request in saved
        for part in request["job"]["parts"]
        if part["intent"] is not None and part["audio_id"] is None
    ]
    assert len(lost) == 1  # its intent was saved before the create was sent
    name, _ = lost[0]
    made = pixverse_sandbox.add_clip(text=texts[name], voice_id=VOICE, email=A, status="COMPLETED")  # what it made
    before = accepted(pixverse_sandbox)
    pixverse_sandbox.reset_request_counts()
    result, _ = run_deferred(batch(texts, tmp_path, accounts={A: 3}), context(store))
    assert result["counts"]["done"] == 3
    assert accepted(pixverse_sandbox) == before  # the lost create found, the others resumed: nothing sent
    assert pixverse_sandbox.request_counts()["list"] >= 1
    assert manifest(tmp_path)[name].audio_ids == (made["audio_id"],)
