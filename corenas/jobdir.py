"""The job directory: resolved config, store, per-trial folders, worker logs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from corenas.errors import ConfigError, StoreError
from corenas.plugins import Plugins
from corenas.store.base import Store

CONFIG_FILE = "config.yaml"
STORE_FILE = "corenas.db"


def _write_temporary(path: Path, text: str) -> str:
    """A synced temporary file beside ``path`` holding ``text`` (removed again on failure)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as a plain open() would create it
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    tmp = _write_temporary(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_job_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def check_new_job_dir(path: Path) -> None:
    """Refuse a directory that already holds a job or cannot be created; writes nothing."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"job_dir '{path}' is a file; choose a directory with job_dir=PATH")
    if is_job_dir(path) or (path / STORE_FILE).exists():
        raise ConfigError(
            f"job_dir '{path}' already holds a job; continue it with `corenas resume {path}` "
            "or choose another job_dir=PATH"
        )
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(
            f"job_dir '{path}' cannot be created: '{ancestor}' is not a directory; "
            "choose another job_dir=PATH"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(
            f"job_dir '{path}' is not writable ('{ancestor}' denies writing); "
            "choose another job_dir=PATH"
        )


def create_job_dir(path: Path) -> list[Path]:
    """Create ``path`` (and parents) and return the folders created, deepest first; on failure
    remove what was created and raise one line."""
    created: list[Path] = []
    probe = path
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    test = path / ".corenas-write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        test.write_text("ok")
        test.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):  # a full disk creates the file but not its text
            test.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise ConfigError(
            f"job_dir '{path}' is not writable: {exc.strerror or exc}; choose another job_dir=PATH"
        ) from exc
    return created


def discard_new_job(path: Path, created: list[Path]) -> None:
    """Undo a new search that failed before its job was recorded: remove the default store's
    files from ``path`` and the folders ``create_job_dir`` created (when empty)."""
    for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", f"{STORE_FILE}.lock"):
        with contextlib.suppress(OSError):
            (path / name).unlink(missing_ok=True)
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def read_job_config(path: Path) -> DictConfig:
    """The resolved config saved in a job dir; ``ConfigError`` if ``path`` is not a job."""
    if not path.is_dir():
        raise ConfigError(f"'{path}' is not a directory; give the job directory of a search")
    if not is_job_dir(path):
        raise ConfigError(
            f"'{path}' is not a corenas job directory (no {CONFIG_FILE}); give the directory "
            "that `corenas search` printed"
        )
    try:
        cfg = OmegaConf.load(path / CONFIG_FILE)
    except Exception as exc:
        raise ConfigError(f"{path / CONFIG_FILE} is not valid YAML: {exc}") from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path / CONFIG_FILE} does not hold a corenas configuration")
    return cfg


@contextmanager
def saving_job_config(path: Path, config: dict[str, Any]) -> Iterator[None]:
    """Replace ``path/config.yaml`` with ``config`` once the ``with`` body (the store's copy of
    the config) succeeds; when the file cannot be written, or the body fails, it stays as it
    was. A write error (a full disk) is a one-line ``ConfigError``."""
    target = path / CONFIG_FILE
    try:
        tmp = _write_temporary(target, OmegaConf.to_yaml(OmegaConf.create(config)))
    except OSError as exc:
        raise _config_write_error(target, exc) from exc
    try:
        yield
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _config_write_error(target, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config_write_error(target: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write {target}: {exc.strerror or exc}; free space on its disk or fix its "
        "permissions, then run the command again"
    )


def store_url(job_dir: Path, storage: dict[str, Any]) -> str:
    url = storage.get("url")
    if url:
        return str(url)
    return f"sqlite:///{(job_dir / STORE_FILE).resolve()}"


def open_store(job_dir: Path, storage: dict[str, Any], plugins: Plugins) -> Store:
    """Open the job's store through the registry entry named by the URL scheme."""
    url = store_url(job_dir, storage)
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    params = {k: v for k, v in storage.items() if k not in ("name", "url")}
    registry = plugins.registry("storage")
    if scheme not in registry:
        raise ConfigError(
            f"storage url '{url}' has scheme '{scheme}'; available: {', '.join(registry.names())}"
        )
    return registry.create(scheme, url=url, **params)


def open_job_store(job_dir: Path, plugins: Plugins) -> Store:
    """Open the store of an existing job for reading (CLI listings)."""
    cfg = read_job_config(job_dir)
    storage = OmegaConf.to_container(cfg.get("storage", {}), resolve=True) or {}
    assert isinstance(storage, dict)
    store = open_store(job_dir, storage, plugins)  # type: ignore[arg-type]
    if store.job() is None:
        store.close()
        raise StoreError(f"'{job_dir}' has a config but no search has started in it yet")
    return store
