"""Packaging: the wheel carries conf/, the package list is complete, the CLI imports no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from corenas_test_helpers import pip_install

REPO = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "corenas").rglob("__init__.py")
    }
    assert listed == found | {"corenas.conf"}
    assert (REPO / "conf" / "__init__.py").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["plugins"],
        ["space", "show", "tabular_mlp"],
        [
            "estimate",
            "--trials",
            "1",
            "--hours-per-trial",
            "1",
            "--gpus-per-trial",
            "1",
            "--parallel",
            "1",
        ],
    ],
)
def test_cli_does_not_import_torch_or_lightning(argv: list[str]) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from corenas.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_config_loads_from_an_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, install it alone into a folder, and compose the config from there."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("corenas-*.whl")
    site = tmp_path / "site"
    pip_install(wheel, site)
    code = (
        "import json, corenas, corenas.conf\n"
        "from corenas.plugins import get_plugins\n"
        "from corenas.config import compose, group_options\n"
        "plugins = get_plugins()\n"
        "cfg = compose(plugins, ['experiment=digits_grid_small'])\n"
        "print(json.dumps({'corenas': corenas.__file__, 'conf': corenas.conf.__file__,\n"
        "  'space': cfg.space.name, 'controller': cfg.controller.name,\n"
        "  'spaces': group_options(plugins, 'space')}))\n"
    )
    # the wheel's folder first; the rest of the path keeps corenas' dependencies importable
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["corenas"].startswith(str(site)) and data["conf"].startswith(str(site))
    assert data["space"] == "digits_cnn" and data["controller"] == "grid"
    assert {"digits_cnn", "tabular_mlp"} <= set(data["spaces"])
