"""Writing reports: paths checked before a scan starts, files replaced
atomically, and a reader that closes the pipe early is not an error."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError, ModelTrustError


def check_writable(*paths: str | None) -> None:
    """Fail before any work is done if a report could not be written."""
    for raw in paths:
        if raw is None or raw == "-":
            continue
        path = Path(raw)
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise ConfigError(f"{raw}: is a folder", hint="name a file to write the report to")
        if not folder.is_dir():
            raise ConfigError(f"{raw}: folder {folder} does not exist", hint="create it first")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ConfigError(f"{raw}: not writable")


def write_atomic(path: str, text: str) -> None:
    """Write to a temp file beside `path`, then rename: a reader never sees half
    a report, and an interrupted write leaves the previous one in place."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(prefix=".modeltrust-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):  # a full disk, a quota: the user's to fix, not a crash
            raise ModelTrustError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
        raise


def write_stdout(text: str) -> None:
    """Print the report; if the reader has gone (`| head`), stop quietly: the
    exit code still tells the verdict."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as exc:  # stdout on a full disk: an error to report, not a crash
        _silence_stdout()
        raise ModelTrustError(f"cannot write the report to standard output ({exc.strerror or exc})") from None


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush
    # cannot raise a second BrokenPipeError with a traceback.
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
