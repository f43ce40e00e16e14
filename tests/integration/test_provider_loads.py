"""The provider as Airflow itself sees it: discovered through its entry point by ``ProvidersManager``."""

from __future__ import annotations

from airflow_provider_pixverse import __version__


def test_providers_manager_loads_the_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["airflow-provider-pixverse"].version == __version__
    hook = manager.hooks["pixverse"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_pixverse.hooks.pixverse.PixVerseHook"
    assert hook.connection_id_attribute_name == "pixverse_conn_id"
    assert "airflow_provider_pixverse.triggers.pixverse" in {
        info.trigger_class_name for info in manager.trigger if info.package_name == "airflow-provider-pixverse"
    }
    assert "airflow_provider_pixverse.operators.pixverse.PixVerseAudioLink" in manager.extra_links_class_names
