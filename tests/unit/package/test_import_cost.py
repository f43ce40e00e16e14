"""DAG parsing imports the operators and the sensor: that must not pull in the HTTP stack."""

from __future__ import annotations

import json
import subprocess
import sys

# What a DAG file has paid for before it imports the provider (airflow.sdk on 3.x, airflow.models on 2.11).
PROBE = """
import json, sys
from airflow.providers.common.compat.sdk import DAG, BaseOperator, BaseSensorOperator
before = set(sys.modules)
import airflow_provider_pixverse.operators.pixverse
import airflow_provider_pixverse.sensors.pixverse
added = sorted(set(sys.modules) - before)
print(json.dumps(added))
"""


def test_parsing_a_dag_does_not_import_the_hook_or_the_trigger() -> None:
    added = json.loads(subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout)
    assert "airflow_provider_pixverse.operators.pixverse" in added
    for heavy in ("airflow_provider_pixverse.hooks.pixverse", "airflow_provider_pixverse.triggers.pixverse"):
        assert heavy not in added
    for library in ("aiohttp", "requests", "yarl"):
        assert library not in added, f"{library} is imported at parse time"


def test_the_trigger_module_brings_its_http_stack_with_it() -> None:
    code = "import sys, airflow_provider_pixverse.triggers.pixverse; print('aiohttp' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
        == "True"
    )
