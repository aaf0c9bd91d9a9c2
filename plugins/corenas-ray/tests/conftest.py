"""The plugin's module registered without installing it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corenas.plugins import Plugins, clear_plugin_cache, load_plugins


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """Built-ins plus this plugin's module, whether or not it is installed."""
    import corenas_ray.plugin

    monkeypatch.setenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", "1")
    clear_plugin_cache()
    yield load_plugins(extra=[("ray", corenas_ray.plugin)])
    clear_plugin_cache()
