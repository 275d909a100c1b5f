"""The oracle (tests/oracle.py) itself: it records what the real loaders
resolve, and it stops them before a name that is not allowed is used."""

from __future__ import annotations

import pickle

from . import oracle
from .conftest import FIXTURES

OS_SYSTEM = b'cos\nsystem\n(S"touch modeltrust-pwned"\ntR.'


def test_stops_before_the_payload_runs() -> None:
    result = oracle.run_loader(FIXTURES / "malicious" / "os_system_p2.pkl", "pickle", oracle.RULES)
    assert result.stopped is not None and result.stopped[1] == "system"
    assert not result.marker_created
    assert not result.completed
    assert result.resolved == ()


def test_allowing_everything_really_runs_it() -> None:
    """The control: without the stop, the same file fires its payload."""
    result = oracle.run_loader(FIXTURES / "malicious" / "os_system_p2.pkl", "pickle", oracle.EVERYTHING)
    assert result.marker_created
    assert result.stopped is None


def test_records_names_in_order_and_the_file_opened() -> None:
    path = FIXTURES / "benign" / "builtins_p4.pkl"
    result = oracle.run_loader(path, "pickle", oracle.EVERYTHING)
    assert result.completed and result.stopped is None
    assert result.names[0] == ("datetime", "datetime")
    assert str(path) in result.opened


def test_torch_members_read() -> None:
    oracle.require_loader("torch")
    result = oracle.run_loader(FIXTURES / "malicious" / "torch_zip_payload.pt", "torch", oracle.RULES)
    assert result.stopped == ("posix", "system")
    assert "data.pkl" in result.members
    assert not result.marker_created


def test_numpy_npz_members_read() -> None:
    oracle.require_loader("numpy")
    result = oracle.run_loader(FIXTURES / "malicious" / "object_array.npz", "numpy", oracle.RULES)
    assert result.stopped is not None and not result.marker_created
    assert len(result.members) >= 1


def test_exact_allowlist() -> None:
    data = pickle.dumps({1, 2}, protocol=2)
    stopped = oracle.run_bytes(data, "pickle", oracle.NOTHING)
    assert stopped.stopped == ("__builtin__", "set")
    allowed = oracle.run_bytes(data, "pickle", oracle.Allow(names=frozenset({("__builtin__", "set")})))
    assert allowed.completed and allowed.stopped is None


def test_worker_many_streams() -> None:
    with oracle.OracleWorker(oracle.RULES) as worker:
        payload, plain, garbage = worker.load_many([OS_SYSTEM, pickle.dumps([1, 2]), b"\x80\x05garbage"])
    assert payload.stopped == ("os", "system") and not payload.marker_created
    assert plain.completed and plain.names == ()
    assert garbage.error and not garbage.completed


def test_worker_python_unpickler_raises_the_same_events() -> None:
    with oracle.OracleWorker(oracle.NOTHING, python=True) as worker:
        result = worker.load(OS_SYSTEM)
    assert result.stopped == ("os", "system")
