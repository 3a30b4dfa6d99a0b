"""What ``idia web`` does with visitors' uploads (docs/security.md): they live in this
process's private folder (mode 0700, removed at exit; folders of crashed runs removed at the
next start), each check's uploads are deleted when the check ends, and photos too large to
decode are refused from their headers, before any pixel is decoded."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from idia.faces import IMAGE_FORMATS

MAX_PHOTO_PIXELS = 50_000_000
MAX_CHECK_PIXELS = 250_000_000  # all photos of one check; one check runs at a time
UNCHECKED_UPLOAD_AGE_S = 600  # uploads never checked: Gradio deletes them after this...
UNCHECKED_UPLOAD_SWEEP_S = 60  # ...looking every this many seconds
UPLOAD_DIR_PREFIX = "idia-web-"
EMPTY_FOLDER_AGE_S = 60

_upload_dir: Path | None = None


def private_upload_dir(base: Path | None = None) -> Path:
    """This process's own folder for Gradio's uploads and cache (``GRADIO_TEMP_DIR``, mode
    0700), removed at exit; folders that crashed runs left behind are removed first. Call it
    before any Gradio component is created: they read the folder when built."""
    global _upload_dir
    if _upload_dir is None or not _upload_dir.is_dir():
        base = Path(base or tempfile.gettempdir())
        remove_stale_upload_dirs(base)
        _upload_dir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_DIR_PREFIX}{os.getpid()}-", dir=base))
        atexit.register(shutil.rmtree, _upload_dir, True)
    os.environ["GRADIO_TEMP_DIR"] = str(_upload_dir)
    return _upload_dir


def remove_stale_upload_dirs(base: Path) -> list[Path]:
    """Remove the upload folders of ``idia web`` processes that no longer run (a crash or a
    kill skips the removal at exit); only folders of this user, never a symlink."""
    removed = []
    for folder in base.glob(f"{UPLOAD_DIR_PREFIX}*"):
        pid = folder.name.removeprefix(UPLOAD_DIR_PREFIX).partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def delete_uploads(paths: Sequence[str], upload_dir: Path | None) -> None:
    """Delete uploaded files, and their folders once empty; only inside ``upload_dir`` (a
    caller's own files, passed from Python, are never touched). Empty folders left by
    Gradio's cleanup of uploads never checked go too: their names are digests of photos."""
    if upload_dir is None:
        return
    root = upload_dir.resolve()
    for name in paths:
        path = Path(name).resolve()
        if not path.is_relative_to(root) or path == root:
            continue
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    settled = time.time() - EMPTY_FOLDER_AGE_S  # a newer one may be about to get its upload
    for folder in root.iterdir():
        with contextlib.suppress(OSError):
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < settled:
                folder.rmdir()  # fails, harmlessly, when not empty


def uploaded_photos(photos: Sequence[str | Mapping[str, Any]] | None) -> dict[str, str]:
    """Path -> the name to show, for photos given as paths (from Python) or as Gradio's file
    records (``{"path": ..., "orig_name": ...}``, from the page)."""
    found = {}
    for photo in photos or []:
        if isinstance(photo, Mapping):
            path = str(photo.get("path") or "")
            shown = Path(str(photo.get("orig_name") or path)).name
        else:
            path, shown = str(photo), Path(str(photo)).name
        if path:
            found[path] = shown
    return found


def photo_sizes_problem(photos: Sequence[str], labels: Mapping[str, str]) -> str | None:
    """Refuse photos too large to decode, from their headers (nothing is decoded here)."""
    total = 0
    for path in photos:
        try:
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                pixels = image.width * image.height
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue  # unreadable: prepare() reports it with its reason
        if pixels > MAX_PHOTO_PIXELS:
            return (
                f"{labels[path]} has {pixels / 1e6:.0f} million pixels; the limit is "
                f"{MAX_PHOTO_PIXELS / 1e6:.0f} million a photo."
            )
        total += pixels
    if total > MAX_CHECK_PIXELS:
        return (
            f"The photos have {total / 1e6:.0f} million pixels in all; the limit is "
            f"{MAX_CHECK_PIXELS / 1e6:.0f} million a check. Upload fewer or smaller photos."
        )
    return None
