"""Plugin discovery, registration and the errors a plugin author sees."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from corenas import hookimpl
from corenas.config import compose
from corenas.engine import plan_search
from corenas.errors import PluginError, UnknownNameError
from corenas.plugins import BUILTIN_PLUGINS, load_plugins

KINDS = ("space", "controller", "trainer", "data", "reward", "hardware", "executor", "storage")


def fake_distribution(root: Path, name: str, entry_points: str) -> Path:
    """A minimal installed distribution (dist-info only) that importlib.metadata finds."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[corenas]\n{entry_points}\n")
    return root


def test_builtins_register_every_kind_through_the_hooks() -> None:
    plugins = load_plugins()
    names = [info.name for info in plugins.infos[: len(BUILTIN_PLUGINS)]]
    assert names == [name for name, _ in BUILTIN_PLUGINS]
    assert all(info.source == "builtin" for info in plugins.infos[: len(BUILTIN_PLUGINS)])
    for kind in KINDS:
        assert len(plugins.registry(kind)) >= 1, kind
    assert plugins.info("corenas.controllers").registered == {
        "controller": [
            "evolution",
            "fixed",
            "grid",
            "local_search",
            "nsga2",
            "random",
            "reinforce",
        ]
    }
    assert set(plugins.registry("executor").names()) >= {"inline", "local"}


def test_plugins_command_json(cli) -> None:
    result = cli("plugins", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_name = {item["name"]: item for item in data}
    assert by_name["corenas.spaces"]["registered"]["space"] == [
        "augmentation",
        "declared",
        "digits_cnn",
        "efficientnet_v2",
        "mlp",
        "mnasnet",
        "nb201",
        "scaling",
        "sequence",
        "unet3d",
    ]
    assert by_name["corenas.rewards"]["registered"]["reward"] == [
        "accuracy",
        "mnasnet",
        "weighted_sum",
    ]
    assert {item["source"] for item in data} >= {"builtin"}
    table = cli("plugins")
    assert "corenas.executors" in table.stdout and "executor: inline, local" in table.stdout


def test_entry_point_that_fails_to_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(
        str(fake_distribution(tmp_path, "brokenpkg", "broken = no_such_module_for_corenas"))
    )
    with pytest.raises(PluginError) as info:
        load_plugins()
    message = str(info.value)
    assert "plugin 'broken'" in message
    assert "entry point 'broken = no_such_module_for_corenas' from brokenpkg" in message
    assert "ModuleNotFoundError" in message and "CORENAS_BLOCK_PLUGINS=broken" in message
    # ...and it can be switched off without uninstalling it
    monkeypatch.setenv("CORENAS_BLOCK_PLUGINS", "broken")
    assert "broken" not in [i.name for i in load_plugins().infos]
    monkeypatch.delenv("CORENAS_BLOCK_PLUGINS")
    monkeypatch.setenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert all(i.source == "builtin" for i in load_plugins().infos)


def test_misspelled_hook_is_reported_with_a_suggestion() -> None:
    plugin = types.SimpleNamespace(corenas_register_space=lambda registry: None)
    with pytest.raises(
        PluginError,
        match=r"unknown hook 'corenas_register_space' "
        r"\(did you mean 'corenas_register_spaces'\?\)",
    ):
        load_plugins(extra=[("typo", plugin)])


def test_unmarked_hook_functions_are_accepted() -> None:
    def corenas_register_trainers(registry):
        registry.register("mine", lambda: None)

    plugin = types.SimpleNamespace(corenas_register_trainers=corenas_register_trainers)
    plugins = load_plugins(extra=[("unmarked", plugin)])
    assert plugins.registry("trainer").get("mine").plugin == "unmarked"


def test_exception_in_a_registration_hook_names_the_plugin() -> None:
    class Plugin:
        @hookimpl
        def corenas_register_rewards(self, registry):
            raise ValueError("boom")

    with pytest.raises(
        PluginError,
        match=r"plugin 'exploding' .* raised in "
        r"corenas_register_rewards: ValueError: boom",
    ):
        load_plugins(extra=[("exploding", Plugin())])


def test_duplicate_names_are_refused() -> None:
    class Plugin:
        @hookimpl
        def corenas_register_controllers(self, registry):
            registry.register("random", object)

    with pytest.raises(
        PluginError,
        match=r"controller 'random' is registered twice, by "
        r"plugins 'corenas.controllers' and 'copycat'",
    ):
        load_plugins(extra=[("copycat", Plugin())])


def test_config_block_list_removes_a_plugin(tmp_path: Path) -> None:
    from corenas.plugins import get_plugins

    cfg = compose(
        get_plugins(), [f"job_dir={tmp_path / 'job'}", "plugins.block=[corenas.hardware]"]
    )
    with pytest.raises(
        UnknownNameError,
        match=r"unknown hardware 'cpu'.*blocked plugins: "
        r"corenas.hardware",
    ):
        plan_search(cfg, get_plugins(list(cfg.plugins.block)), tmp_path / "job")


def test_missing_config_dir_of_a_plugin_is_reported(tmp_path: Path) -> None:
    plugin = types.SimpleNamespace(corenas_config_dirs=lambda: [str(tmp_path / "nope")])
    with pytest.raises(PluginError, match="declares config directory .*nope.*does not exist"):
        load_plugins(extra=[("confless", plugin)])
