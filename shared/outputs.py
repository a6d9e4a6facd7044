"""Output guards: nothing a user already has is overwritten, and nothing half-made is left behind.

Every command that writes a model folder (``genforge train``, ``genforge ecg train``, the finance
``train`` commands, ...) claims its folder through :func:`output_job`:

* the folder gets a small manifest, :data:`MANIFEST`, naming the job kind (``"genforge train vae"``)
  and its settings, written before any work, so a killed run can be recognised and resumed;
* a folder holding anything the same job kind did not write (another suite's model, the user's own
  ``config.json``, a run of another family) is refused unless ``overwrite`` is set;
* a folder of the same job kind whose saved settings differ from this call's is refused with the list
  of differing keys (resuming it would mix two runs), again unless ``overwrite`` is set;
* when the job fails with an exception, a folder this call created is removed again (unless it already
  holds resumable progress), and a manifest this call added to an empty folder is taken back.

:func:`check_writable` checks that a file or folder can be created where the user asked, before any
work, so a read-only place (``/sys/...``) or a parent that is a file is one line, not a traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from genforge.errors import GenforgeError
from genforge.io import write_json_atomic

MANIFEST = ".genforge-job.json"
FORMAT = "genforge-job"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``/`` at worst)."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_writable(path: str | os.PathLike[str], option: str = "--out", folder: bool = False) -> Path:
    """Refuse a ``path`` that cannot be created: parent is a file, wrong kind, or a read-only place.

    ``folder`` says whether ``path`` names a folder (a model folder) or a file (a table). Nothing is
    left behind: the probe file lives only for the check.
    """
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise GenforgeError(f"{option} {path}: is a file; expected a folder")
        if not folder and path.is_dir():
            raise GenforgeError(f"{option} {path}: is a folder; expected a file name")
    anchor = _nearest_existing(path if folder else path.parent)
    if not anchor.is_dir():
        raise GenforgeError(f"{option} {path}: {anchor} is a file; expected a folder there")
    try:
        fd, probe = tempfile.mkstemp(prefix=".genforge-probe-", dir=anchor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GenforgeError(f"{option} {path}: cannot write in {anchor} ({reason}); expected a writable "
                            "place") from None
    return path


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The job manifest of ``directory``, or None when it has none (or an unreadable one)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _comparable(value: Any) -> Any:
    """Settings as JSON would give them back (tuples as lists, paths as strings), NaN-safe."""
    if isinstance(value, dict):
        return {str(k): _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def settings_diff(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two settings dicts, as ``key: saved -> wanted``."""
    saved, wanted = _comparable(saved), _comparable(wanted)
    lines = []
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key, "<unset>") != wanted.get(key, "<unset>"):
            lines.append(f"{key}: {saved.get(key, '<unset>')!r} -> {wanted.get(key, '<unset>')!r}")
    return lines


def _clear(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _decide(out: Path, kind: str, settings: dict[str, Any], overwrite: bool, resume: bool,
            option: str) -> str:
    """What claiming ``out`` means: ``"new"``, ``"clear"`` (replace its contents) or ``"resume"``."""
    check_writable(out, option=option, folder=True)
    contents = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not contents:
        return "new"
    manifest = read_manifest(out)
    if manifest is None or manifest.get("kind") != kind:
        if overwrite:
            return "clear"
        what = (f"a {manifest['kind']!r} job" if manifest
                else f"files it did not write ({_some(contents)})")
        raise GenforgeError(
            f"{option} {out}: holds {what}; expected an empty or new folder, or this job's own "
            f"unfinished run of {kind!r} (add --overwrite to replace it)"
        )
    diff = settings_diff(manifest.get("settings") or {}, settings)
    if diff and not overwrite:
        raise GenforgeError(
            f"{out / MANIFEST}: saved settings differ from this call ({'; '.join(diff)}); expected "
            "the same settings to resume (or add --overwrite to start afresh, or another --out)"
        )
    return "clear" if overwrite or not resume else "resume"


def check_claim(
    out: str | os.PathLike[str],
    kind: str,
    settings: dict[str, Any],
    overwrite: bool = False,
    resume: bool = True,
    option: str = "--out",
) -> None:
    """Raise now what :func:`claim` would raise later, touching nothing: for jobs that write at the end."""
    _decide(Path(out), kind, settings, overwrite, resume, option)


def claim(
    out: str | os.PathLike[str],
    kind: str,
    settings: dict[str, Any],
    overwrite: bool = False,
    resume: bool = True,
    option: str = "--out",
) -> tuple[bool, bool]:
    """Make ``out`` this job's folder (see the module docstring); returns (created, resuming).

    ``created``: the folder did not exist before this call. ``resuming``: it holds an earlier run of the
    same job with the same settings, which the job may continue.
    """
    out = Path(out)
    existed = out.is_dir()
    action = _decide(out, kind, settings, overwrite, resume, option)
    if action == "clear":
        _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / MANIFEST, {"format": FORMAT, "kind": kind, "settings": _comparable(settings)})
    return (not existed, action == "resume")


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@contextlib.contextmanager
def output_job(
    out: str | os.PathLike[str],
    kind: str,
    settings: dict[str, Any],
    overwrite: bool = False,
    resume: bool = True,
    option: str = "--out",
    keep: Callable[[Path], bool] | None = None,
) -> Iterator[bool]:
    """Claim ``out`` for a job (:func:`claim`) and yield whether it resumes an earlier run.

    If the body raises, a folder this call created is removed again (one it found empty or was told to
    overwrite is emptied), unless ``keep(out)`` says it holds resumable progress worth a rerun; a resumed
    folder keeps its contents.
    """
    out = Path(out)
    created, resuming = claim(out, kind, settings, overwrite=overwrite, resume=resume, option=option)
    try:
        yield resuming
    except BaseException:
        if not resuming and not (keep is not None and keep(out)):
            if created:
                shutil.rmtree(out, ignore_errors=True)
            elif out.is_dir():
                _clear(out)
        raise
