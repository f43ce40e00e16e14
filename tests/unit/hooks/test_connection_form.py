"""Every extra the hook reads is in the connection form: the 3.2+ ``conn-fields`` and the 2.11-3.1 widgets.

The extras the hook reads are found in the settings parser itself (every ``extra.get("...")`` of
``settings_from_connection``), so a new setting that the form forgets fails here.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
from typing import Any

import pytest

from airflow_provider_pixverse._api import request
from airflow_provider_pixverse.get_provider_info import get_provider_info
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook


def extras_the_hook_reads() -> set[str]:
    """The keys ``settings_from_connection`` reads from the connection's extra.

    Read as ``extra.get("key")``, or by a helper given ``extra`` and then the key: ``f(..., extra, "key", ...)``.
    """
    tree = ast.parse(inspect.getsource(request.settings_from_connection))
    handed = {
        node.args[position + 1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for position, arg in enumerate(node.args[:-1])
        if isinstance(arg, ast.Name)
        and arg.id == "extra"
        and isinstance(node.args[position + 1], ast.Constant)
        and isinstance(node.args[position + 1].value, str)
    }
    keys = handed | {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "extra"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    subscripts = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "extra"
    ]
    assert not subscripts, "the parser reads extra[...] as well: teach this test to find those keys"
    return keys


def conn_fields() -> dict[str, Any]:
    (connection_type,) = get_provider_info()["connection-types"]
    fields: dict[str, Any] = connection_type["conn-fields"]
    return fields


def test_the_parser_reads_the_documented_extras() -> None:
    # The finder itself must find something, or the comparisons below would compare nothing.
    assert {"email", "timeout", "list_page_size"} <= extras_the_hook_reads()


def test_conn_fields_declare_every_extra_the_hook_reads() -> None:
    assert set(conn_fields()) == extras_the_hook_reads()


@pytest.mark.parametrize("name", sorted(extras_the_hook_reads()))
def test_each_conn_field_is_labelled_and_described(name: str) -> None:
    field = conn_fields()[name]
    assert field["label"] and field["description"], field
    assert "null" in field["schema"]["type"], "an empty form field is saved as null; the hook reads it as unset"


@pytest.fixture
def fake_wtforms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for wtforms and flask_appbuilder (Airflow 2.11-3.1's form libraries): they record the fields."""

    class StringField:
        def __init__(self, label: str, *, description: str = "", widget: object = None) -> None:
            self.label, self.description, self.widget = label, description, widget

    wtforms = types.ModuleType("wtforms")
    wtforms.StringField = StringField  # type: ignore[attr-defined]
    appbuilder = types.ModuleType("flask_appbuilder")
    fieldwidgets = types.ModuleType("flask_appbuilder.fieldwidgets")
    fieldwidgets.BS3TextFieldWidget = type("BS3TextFieldWidget", (), {})  # type: ignore[attr-defined]
    appbuilder.fieldwidgets = fieldwidgets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wtforms", wtforms)
    monkeypatch.setitem(sys.modules, "flask_appbuilder", appbuilder)
    monkeypatch.setitem(sys.modules, "flask_appbuilder.fieldwidgets", fieldwidgets)


@pytest.mark.usefixtures("fake_wtforms")
def test_legacy_widgets_declare_every_extra_the_hook_reads() -> None:
    widgets = PixVerseHook.get_connection_form_widgets()
    assert set(widgets) == extras_the_hook_reads()
    for name, widget in widgets.items():
        assert widget.label == conn_fields()[name]["label"]
        assert widget.description == conn_fields()[name]["description"]


def test_without_wtforms_there_are_no_legacy_widgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wtforms", None)  # an import of it raises ImportError
    assert PixVerseHook.get_connection_form_widgets() == {}


def test_a_page_size_typed_into_the_form_is_read() -> None:
    # The 2.11-3.1 form saves what was typed as a string; the hook reads it as the page size.
    extra = {"list_page_size": "20", "timeout": "12"}
    settings = request.settings_from_connection("pixverse_form", None, None, "token", extra)
    assert (settings.list_page_size, settings.timeout) == (20, 12.0)
