"""Scanning executes nothing: an audit hook watches a scan of every malicious
fixture for process, exec, file-creation and dangerous-import events."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import FIXTURES, MARKER

WATCHER = textwrap.dedent(
    """
    import sys
    from modeltrust.config import ScanConfig
    from modeltrust.engine import scan

    config = ScanConfig(targets=(sys.argv[1],))
    scan(config)  # warm up: the scanner's own lazy imports happen here

    BANNED_IMPORTS = {"webbrowser", "runpy", "timeit", "pty", "ctypes", "dill", "cloudpickle", "torch"}
    events = []

    from modeltrust.scanners.keras import _HDF5_CHILD

    def own_hdf5_reader(event, args):
        # The one child a scan starts: h5py reading Keras attributes over a pipe
        # (libhdf5 can hang on a crafted file; a child can be killed). Its code is
        # fixed and it is given bytes, never a path or a command from the file.
        return event == "subprocess.Popen" and list(args[1][1:4]) == ["-I", "-c", _HDF5_CHILD]

    def hook(event, args):
        if event in ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "subprocess.Popen", "os.fork"):
            if not own_hdf5_reader(event, args):
                events.append((event, args))
        elif event == "exec":
            events.append((event, str(args)[:80]))
        elif event == "import" and args[0].split(".")[0] in BANNED_IMPORTS:
            events.append((event, args[0]))
        elif event == "open" and MARKER in str(args[0]):
            events.append((event, args[0]))
        elif event == "marshal.loads" or event == "pickle.find_class":
            events.append((event, str(args)[:80]))

    MARKER = sys.argv[2]
    sys.addaudithook(hook)
    report = scan(config)
    assert report.findings, "the scan found nothing"
    print("EVENTS", events)
    sys.exit(1 if events else 0)
    """
)


def test_scan_executes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WATCHER, str(FIXTURES / "malicious"), MARKER],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / MARKER).exists()
    assert not any(tmp_path.iterdir())
