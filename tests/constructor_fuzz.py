"""Call allowlisted constructors with hostile arguments and record what they do.

A `constructor` allow entry claims the callable is safe "whatever the
arguments": a pickle can call it with any values the stream builds (a
`new-only` entry makes the claim for `cls.__new__`, what NEWOBJ runs). This module
checks the claim the way an attacker would. Run as a child process
(`python constructor_fuzz.py < entries.json`, cwd a temp dir): it imports every
named object first (a real unpickler imports the module too, before any call),
then installs an audit hook and calls each one with a set of hostile argument
shapes (path strings and file-like names, an open mode, module names, a
callable probe in several positions, huge and negative integers, nested
containers). It prints one JSON line per entry with the suspicious events:

- `open` of a path containing one of our hostile strings, or in a writing mode;
- `os.*`, `shutil.*`, `subprocess.*`, `socket.*`, `ctypes.*`, `urllib.*`,
  `http.client.*`, `sqlite3.*`, `webbrowser.*`, `pickle.find_class`,
  `marshal.loads` events with a hostile string in their arguments, or any of
  the process, network, native-code and nested-unpickling ones at all;
- `import` of a module name we passed (a module by that name exists in the
  working directory: importing it creates the marker);
- `exec`/`compile` of code that does not come from a source file (eval,
  exec of a string, generated code); an AST-only parse (`ast.literal_eval`)
  is not code;
- a call of the probe we passed (the constructor calls its arguments);
- native code opening a path we passed (no audit event covers a C `fopen`):
  one hostile path is a FIFO, and a watcher thread notices when anything opens
  it for reading;
- the marker file appearing in the working directory.

Each entry is called with every shape twice: the first pass warms up lazy
imports of the library's own modules (their module-level code may exec
generated source, e.g. dataclasses), so `exec`/`compile` count in the second
pass only; everything else counts in both.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import stat
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

MARKER = "modeltrust-pwned"
FUZZ_MODULE = "modeltrust_fuzz_module"
BAIT = "modeltrust-bait"  # a FIFO: opening it is seen by the watcher thread
HOSTILE_STRINGS = (MARKER, FUZZ_MODULE, BAIT, "/etc/passwd")
ALWAYS = (
    "subprocess.",
    "socket.",
    "urllib.",
    "http.client.",
    "sqlite3.",
    "webbrowser.",
    "ftplib.",
    "smtplib.",
    "imaplib.",
    "poplib.",
    "telnetlib.",
    "nntplib.",
    "pickle.find_class",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.kill",
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.putenv",
    "os.unsetenv",
    "os.chdir",
    "os.startfile",
    "shutil.",
)
PER_CALL_SECONDS = 2
PATH_KEYWORDS = ("filename", "file", "path", "model_file", "fname", "filepath_or_buffer")


class Probe:
    """A callable argument: if a constructor calls it, the entry calls its arguments."""

    def __init__(self, log: list[str], where: str) -> None:
        self.log = log
        self.where = where

    def __call__(self, *args: object, **kwargs: object) -> None:
        self.log.append(f"called its argument ({self.where})")

    def __repr__(self) -> str:
        return f"<probe {self.where}>"


def shapes(log: list[str]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    def probe(where: str) -> Probe:
        return Probe(log, where)

    nested: list[Any] = [[{"k": (MARKER, 2**62)}], {"__setstate__": probe("in a dict")}]
    return [
        ((), {}),
        ((MARKER,), {}),
        ((BAIT,), {}),
        ((None, BAIT), {}),
        ((None, None, BAIT), {}),
        ((None, None, None, BAIT), {}),
        ((MARKER, "w+"), {}),
        ((MARKER, "wb"), {}),
        ((b"modeltrust-pwned",), {}),
        (("/etc/passwd",), {}),
        ((Path(MARKER),), {}),
        ((FUZZ_MODULE,), {}),
        ((FUZZ_MODULE, "system"), {}),
        ((probe("argument 0"),), {}),
        (("x", probe("argument 1")), {}),
        ((probe("argument 0"), probe("argument 1"), probe("argument 2")), {}),
        ((probe("argument 0"), (MARKER,), None), {}),
        ((2**62,), {}),
        ((-1, 2**63), {}),
        ((nested,), {}),
        ((nested, nested, nested), {}),
        *(((), {key: BAIT}) for key in PATH_KEYWORDS),
        ((), {"filename": MARKER, "mode": "w+"}),
        ((), {"default_factory": probe("keyword"), "callback": probe("keyword"), "func": probe("keyword")}),
    ]


def _hostile(value: object, depth: int = 0) -> bool:
    if isinstance(value, (str, bytes, os.PathLike)):
        text = os.fsdecode(value) if not isinstance(value, os.PathLike) else os.fspath(value)
        return any(h in str(text) for h in HOSTILE_STRINGS)
    if depth < 3 and isinstance(value, (tuple, list)):
        return any(_hostile(v, depth + 1) for v in value)
    return False


def _writing(args: tuple[Any, ...]) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))


def _from_source_file(code: object) -> bool:
    filename = getattr(code, "co_filename", "")
    if not isinstance(filename, str):
        return False
    return filename.startswith("<frozen ") or (filename.endswith(".py") and os.path.isfile(filename))


class BaitWatcher(threading.Thread):
    """Notices a reader of the BAIT FIFO (a C `fopen` raises no audit event):
    a non-blocking open for writing succeeds only while someone reads it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.opened = threading.Event()
        if os.path.exists(BAIT):
            os.unlink(BAIT)
        os.mkfifo(BAIT)
        assert stat.S_ISFIFO(os.stat(BAIT).st_mode)

    def run(self) -> None:
        while True:
            try:
                fd = os.open(BAIT, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.005)
                continue
            self.opened.set()
            os.close(fd)  # the reader sees end of file and goes on


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.active = False
        self.code_counts = False  # exec/compile: second pass only
        self.thread = threading.get_ident()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or threading.get_ident() != self.thread:
            return
        self.active = False  # nothing below may recurse into the hook
        try:
            what = self._judge(event, args)
            if what:
                self.events.append(what)
        finally:
            self.active = True

    def _judge(self, event: str, args: tuple[Any, ...]) -> str:
        if event == "open":
            if _hostile(args[0]) or _writing(args):
                return f"open {args[0]!r} {args[1:]!r}"[:200]
            return ""
        if event == "import":
            return f"import {args[0]}" if _hostile(args[0]) else ""
        if event == "exec":
            if not self.code_counts or _from_source_file(args[0]):
                return ""
            return f"exec {getattr(args[0], 'co_filename', '?')}"
        if event == "compile":
            source, filename = (*args, None, None)[:2]
            if not self.code_counts or (isinstance(filename, str) and filename.endswith(".py")):
                return ""
            if filename == "<unknown>" and isinstance(source, (str, bytes)):
                return ""  # ast.parse / ast.literal_eval: a tree, not code
            return f"compile {filename!r}"[:200]
        if event == "marshal.loads" or event.startswith("ctypes."):
            return f"{event} {args!r}"[:200] if _hostile(args) else ""
        if any(event.startswith(prefix) for prefix in ALWAYS):
            return f"{event} {args!r}"[:200]
        if (event.startswith(("os.", "glob.", "tempfile."))) and _hostile(args):
            return f"{event} {args!r}"[:200]
        return ""


def _resolve(module: str, qualname: str) -> object:
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _call(recorder: Recorder, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    signal.alarm(PER_CALL_SECONDS)
    recorder.active = True
    try:
        target(*args, **kwargs)
    except BaseException:  # noqa: BLE001 - any failure is fine; only effects matter
        pass
    finally:
        recorder.active = False
        signal.alarm(0)
    time.sleep(0)  # let the watcher look


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return ", ".join([repr(a)[:40] for a in args] + [f"{k}={v!r}"[:40] for k, v in kwargs.items()])


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError("constructor call took too long")


def main() -> None:
    entries: list[list[str]] = json.load(sys.stdin)  # [module, qualname, kind]
    warnings.simplefilter("ignore")
    # A constructor that allocates what a huge argument asks for fails fast.
    limit = 16 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    targets: list[tuple[str, object]] = []
    for module, qualname, kind in entries:
        try:
            obj = _resolve(module, qualname)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            targets.append((f"{module}:{qualname}", exc))
            continue
        if kind == "new-only":  # what NEWOBJ runs: cls.__new__(cls, *args)
            cls = obj

            def obj(*args: Any, _cls: Any = cls, **kwargs: Any) -> object:
                return _cls.__new__(_cls, *args, **kwargs)

        targets.append((f"{module}:{qualname}", obj))
    # A module by the name we pass: importing it (importlib raises no audit
    # event) creates the marker; sys.modules shows it too.
    Path(f"{FUZZ_MODULE}.py").write_text(
        f"open({MARKER!r}, 'w').close()\ndef system(*args):\n    open({MARKER!r}, 'w').close()\n"
    )
    sys.path.insert(0, os.getcwd())
    watcher = BaitWatcher()
    watcher.start()
    recorder = Recorder()
    sys.addaudithook(recorder.hook)
    signal.signal(signal.SIGALRM, _alarm)
    for name, target in targets:
        print(json.dumps({"name": name, "started": True}), flush=True)
        if isinstance(target, Exception):
            print(json.dumps({"name": name, "unresolved": repr(target)[:200]}), flush=True)
            continue
        log: list[str] = []
        recorder.events = log
        for second_pass in (False, True):
            recorder.code_counts = second_pass
            for args, kwargs in shapes(log):
                _call(recorder, target, args, kwargs)
                if watcher.opened.is_set():
                    log.append(f"native code opened a path it was given ({_describe(args, kwargs)})")
                    watcher.opened.clear()
        if sys.modules.pop(FUZZ_MODULE, None) is not None:
            log.append(f"imported {FUZZ_MODULE}, a module name it was given")
        if Path(MARKER).exists():
            log.append("created the marker file")
            Path(MARKER).unlink()
        print(json.dumps({"name": name, "events": sorted(set(log))}), flush=True)


if __name__ == "__main__":
    main()
