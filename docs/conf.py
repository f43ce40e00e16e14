"""Sphinx configuration of the airflow-provider-pixverse documentation (``make docs``).

The build is offline: no intersphinx, no remote images. ``make docs`` runs it with ``-W --keep-going -n``:
every warning fails it, a broken cross-reference (nitpicky) or a link to a missing page included.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# autodoc imports the modules, and with them Airflow: give it a throw-away home, not the user's.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from typing import TYPE_CHECKING, Any  # noqa: E402

from airflow_provider_pixverse import __version__  # noqa: E402

if TYPE_CHECKING:
    from docutils.nodes import Element, TextElement
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

project = "airflow-provider-pixverse"
author = "airflow-provider-pixverse developers"
copyright = "airflow-provider-pixverse developers"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"

# Links between pages are checked: a Markdown link to a page or heading that does not exist warns.
myst_all_links_external = False
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# Every cross-reference must resolve. Other projects' names have no inventory here (no network), and
# the docstrings also name private helpers (``_api``, the operators' building blocks) that the API
# reference leaves out: those are allowed. A public name of this package that does not resolve fails.
PUBLIC_MODULES = (
    "hooks.pixverse",
    "operators.pixverse",
    "operators.text_to_speech",
    "sensors.pixverse",
    "triggers.pixverse",
    "triggers.new_speech",
    "exceptions",
    "models",
    "sandbox",
)
_PUBLIC = "|".join(re.escape(m) for m in PUBLIC_MODULES)
_PRIVATE_HELPERS = (
    "RetryPolicy|Clock|MediaStream|ApiSettings|SpeechListing|ClipWaiter|SharedAccountPoll|ClipWaitMixin"
    "|error_from_details|media_deadline|event_payload|account_snapshots"
)
nitpicky = True
nitpick_ignore_regex = [
    # Other projects: Airflow, the standard library, the HTTP clients.
    (r"py:.*", r"(airflow|aiohttp|requests|pendulum|datetime|collections|typing|pathlib|upath|enum|yarl)(\..*)?"),
    (r"py:.*", r"_?pytest(\..*)?"),
    (r"py:.*", r"(Context|ObjectStoragePath|TriggerEvent|PokeReturnValue|TaskInstanceKey|BaseOperator)"),
    (r"py:.*", r"(Any|Mapping|Sequence|Iterator|AsyncIterator|Callable|Path|Enum|StrEnum|IntEnum)"),
    # This package's private modules and helpers: every module but the public ones.
    (r"py:.*", rf"airflow_provider_pixverse\.(?!({_PUBLIC})(\.|$)).*"),
    (r"py:.*", r"airflow_provider_pixverse\.sandbox\.(?!(PixVerseSandbox|pytest_plugin)(\.|$)).*"),
    (r"py:mod", r"\.?(creating|speech_plan|speech_destination|base)"),
    (r"py:.*", rf"({_PRIVATE_HELPERS})"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_inherit_docstrings = False

html_theme = "furo"
html_title = f"PixVerse provider for Apache Airflow {release}"
html_static_path: list[str] = []


_RELATIVE_MOD = re.compile(r":mod:`\.(?P<name>[\w.]+)`")


def absolute_module_refs(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """``:mod:`.pixverse``` in a module's docstring means the sibling module: say so, so it resolves."""
    module = name
    while what != "module" and module and module not in sys.modules:
        module = module.rpartition(".")[0]
    package = module.rpartition(".")[0]
    lines[:] = [_RELATIVE_MOD.sub(lambda m: f":mod:`{package}.{m['name']}`", line) for line in lines]


def resolve_unqualified(app: Sphinx, env: BuildEnvironment, node: Element, contnode: TextElement) -> Any:
    """A bare name (``:class:`PixVerseSpeechTrigger```) resolves when exactly one documented object has it."""
    if node.get("refdomain") != "py" or "." in node["reftarget"]:
        return None
    domain = env.get_domain("py")
    matches = domain.find_obj(env, None, None, node["reftarget"], node["reftype"], 1)  # type: ignore[attr-defined]
    if len(matches) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    full_name, entry = matches[0]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full_name)


def setup(app: Sphinx) -> None:
    """Hook the two helpers above into the build."""
    app.connect("autodoc-process-docstring", absolute_module_refs)
    app.connect("missing-reference", resolve_unqualified)
