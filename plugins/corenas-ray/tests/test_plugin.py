"""Registration, the shipped config, and one-line errors for bad executor settings (no Ray
cluster needed)."""

from __future__ import annotations

import socket

import corenas_ray.plugin as ray_plugin
import pytest

from corenas.config import component, compose
from corenas.errors import ConfigError
from corenas.plugins import Plugins


def test_executor_and_config_are_registered(plugins: Plugins) -> None:
    info = plugins.info("ray")
    assert info.registered == {"executor": ["ray"]}
    assert info.config_dirs == [ray_plugin.CONFIG_DIR]
    assert component(compose(plugins, ["executor=ray"]), "executor") == {
        "name": "ray",
        "address": "auto",
        "num_cpus_per_trial": 1,
        "num_gpus_per_trial": 0,
        "resources_per_trial": None,
        "max_retries": 1,
        "check_resources": True,
        "runtime_env": None,
        "log_to_driver": False,
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"address": "head-node"}, "executor.address must be auto, local, HOST:PORT"),
        ({"address": f"127.0.0.1:{closed_port()}"}, "no Ray cluster answers at 127.0.0.1:"),
        ({"address": "local", "num_cpus_per_trial": -1}, "executor.num_cpus_per_trial must be"),
        ({"address": "local", "resources_per_trial": {"x": "a"}}, "resources_per_trial.x must"),
        ({"address": "local", "max_retries": -1}, "executor.max_retries must be >= 0"),
        ({"address": "local", "num_gpus": 1}, "has no parameter 'num_gpus'"),
    ],
)
def test_bad_settings_are_one_line_errors(
    plugins: Plugins, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        plugins.registry("executor").create("ray", **params)
    assert "\n" not in str(error.value)


def test_auto_probes_the_address_in_ray_address(
    plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="executor.address=auto: no Ray cluster answers at 127"):
        plugins.registry("executor").create("ray", address="auto")
