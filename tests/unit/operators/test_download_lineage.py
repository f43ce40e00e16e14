"""What the download operator tells lineage: OpenLineage datasets and the asset it emits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixverse_testing import RecordingTaskInstance, run_dag

from airflow_provider_pixverse.operators.pixverse import PixVerseDownloadSpeechOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

EXAMPLE = Path(__file__).parents[3] / "example_dags" / "example_pixverse_speech.py"


def completed(sandbox: PixVerseSandbox) -> dict[str, Any]:
    return sandbox.add_clip(text="Lineage", voice_id="minimax_english_radiant_girl", status="COMPLETED")


def test_openlineage_input_is_the_media_file_and_output_the_object(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    clip = completed(pixverse_sandbox)
    operator = PixVerseDownloadSpeechOperator(task_id="d", audio_id=clip["audio_id"], destination=f"file://{tmp_path}/")
    operator.execute({"ti": RecordingTaskInstance()})
    lineage = operator.get_openlineage_facets_on_complete(None)
    (source,) = lineage.inputs
    (output,) = lineage.outputs
    assert f"{source.namespace}/{source.name}" == clip["url"]
    assert output.namespace == "file"
    assert output.name == f"{str(tmp_path).lstrip('/')}/{clip['name']}"


def test_openlineage_is_empty_before_anything_was_written() -> None:
    operator = PixVerseDownloadSpeechOperator(task_id="d", audio_id="a-1", destination="file:///tmp/x/")
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [] and lineage.outputs == []


def test_asset_alias_is_an_outlet() -> None:
    operator = PixVerseDownloadSpeechOperator(
        task_id="d", audio_id="a-1", destination="file:///tmp/x/", asset_alias="new_speech"
    )
    assert [getattr(outlet, "name", None) for outlet in operator.outlets] == ["new_speech"]


def test_the_example_emits_an_asset_event_for_the_written_object(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PIXVERSE_POLL_INTERVAL", "0.5")
    dag_run = run_dag(EXAMPLE, "example_pixverse_speech", {"destination": f"file://{tmp_path}/speech/"})
    assert dag_run.state == "success"
    (mp3,) = (tmp_path / "speech").iterdir()
    try:
        from airflow.models.asset import AssetEvent, AssetModel

        event_asset_id = AssetEvent.asset_id
    except ImportError:  # Airflow 2.11: assets are still datasets
        from airflow.models.dataset import DatasetEvent as AssetEvent
        from airflow.models.dataset import DatasetModel as AssetModel

        event_asset_id = AssetEvent.dataset_id
    from airflow.utils.session import create_session
    from sqlalchemy import select

    uri = f"file://{mp3}"
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, event_asset_id == AssetModel.id).where(AssetModel.uri == uri)
        ).all()
        assert len(events) == 1
        assert events[0].extra.get("audio_id", "").startswith("user:")
