"""The JupyterLab defaults `make setup` installs: real setting names and values, merged into an existing file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from seminar_lib.lab_settings import OVERRIDES, install, overrides_path


def schema_of(plugin: str) -> dict:
    """The settings schema JupyterLab of this environment has for ``plugin`` (``package:name``)."""
    package, name = plugin.rsplit(":", 1)
    share = Path(sys.prefix) / "share" / "jupyter"
    for folder in (share / "lab" / "schemas" / package, share / "labextensions" / package / "schemas" / package):
        if (folder / f"{name}.json").is_file():
            return json.loads((folder / f"{name}.json").read_text())
    raise AssertionError(f"JupyterLab here has no settings schema for {plugin}")


@pytest.mark.parametrize("plugin", sorted(OVERRIDES))
def test_every_override_is_a_valid_setting_of_an_installed_plugin(plugin):
    schema = schema_of(plugin)
    assert set(OVERRIDES[plugin]) <= set(schema["properties"]), "unknown setting names"
    jsonschema.validate(dict(OVERRIDES[plugin]), schema)


def test_the_news_popup_is_off_and_progress_is_in_the_status_bar():
    assert OVERRIDES["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert OVERRIDES["@jupyterlab/notebook-extension:tracker"]["kernelStatus"]["showOnStatusBar"] is True
    # the jump-to-cell button would record execution timings into every saved notebook
    assert OVERRIDES["@jupyterlab/notebook-extension:tracker"]["kernelStatus"]["showJumpToRecentExecutionButton"] is False


def test_install_writes_overrides_and_keeps_other_plugins_entries(tmp_path):
    path = overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                "@jupyterlab/apputils-extension:notification": {"fetchNews": "true"}}))
    assert install(tmp_path) == path
    written = json.loads(path.read_text())
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert {k: written[k] for k in OVERRIDES} == {k: dict(v) for k, v in OVERRIDES.items()}


def test_install_refuses_a_broken_file_instead_of_replacing_it(tmp_path):
    path = overrides_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON.*fix or delete it"):
        install(tmp_path)
    assert path.read_text() == "{not json"
