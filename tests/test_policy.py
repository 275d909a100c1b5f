"""Policies: thresholds, severity overrides, waivers with reasons and expiry."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan as scan_cmd
from modeltrust.errors import ConfigError
from modeltrust.findings import Severity
from modeltrust.policy import load_policy, resolve_policy

from .conftest import FIXTURES, ROOT, scan_paths

cli.add_command(scan_cmd)
# A class the stream imports and holds but never instantiates: one medium finding.
UNKNOWN_CLASS = b"\x80\x04\x8c\x0cmylib.models\x8c\x03Net\x93\x85."


def write_policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("kind: policy\nversion: 1\n" + body)
    return path


def test_builtin_policies_load() -> None:
    for name, fail_on in (
        ("default", Severity.MEDIUM),
        ("strict", Severity.LOW),
        ("permissive-research", Severity.HIGH),
    ):
        assert resolve_policy(name, ROOT / "rules").fail_on is fail_on


def test_waiver_marks_but_keeps_the_finding(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)
    policy = load_policy(
        write_policy(
            tmp_path,
            "exceptions:\n  - rule: pickle-unknown-import\n    subject: 'mylib.*'\n"
            "    reason: in-house classes, reviewed\n    expires: 2999-01-01\n",
        )
    )
    report = policy.apply(scan_paths(sample))
    [finding] = report.findings
    assert finding.waiver.startswith("in-house classes") and not report.at_or_above(Severity.MEDIUM)


def test_expired_waiver_no_longer_applies(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)
    policy = load_policy(
        write_policy(tmp_path, "exceptions:\n  - rule: '*'\n    reason: old\n    expires: 2020-01-01\n")
    )
    report = policy.apply(scan_paths(sample), today=datetime.date(2026, 1, 1))
    assert report.at_or_above(Severity.MEDIUM) and policy.expired(datetime.date(2026, 1, 1))


def test_severity_override(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "overrides:\n  pickle-os-command: low\n"))
    report = policy.apply(scan_paths(FIXTURES / "malicious" / "os_system_p2.pkl"))
    assert [f.severity for f in report.findings] == [Severity.LOW]


@pytest.mark.parametrize(
    "body, message",
    [
        ("exceptions:\n  - rule: x\n    expires: 2999-01-01\n", "reason"),
        ("exceptions:\n  - rule: x\n    reason: r\n", "expires"),
        ("exceptions:\n  - rule: x\n    reason: r\n    expires: soon\n", "date"),
        ("fail_on: urgent\n", "unknown severity"),
        ("failon: high\n", "unknown keys"),
    ],
)
def test_bad_policies_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(write_policy(tmp_path, body))


def test_cli_policy_and_fail_on_precedence(tmp_path: Path) -> None:
    sample = tmp_path / "model.pkl"
    sample.write_bytes(UNKNOWN_CLASS)  # one medium finding
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", str(sample)]).exit_code == 1
    assert runner.invoke(cli, ["scan", "--policy", "permissive-research", str(sample)]).exit_code == 0
    assert (
        runner.invoke(
            cli, ["scan", "--policy", "permissive-research", "--fail-on", "low", str(sample)]
        ).exit_code
        == 1
    )
    result = runner.invoke(cli, ["scan", "--policy", "nope", str(sample)])
    assert result.exit_code == 2 and "no policy 'nope'" in result.stderr
    out = runner.invoke(cli, ["scan", "--policy", "strict", "--format", "json", str(sample)]).stdout
    assert json.loads(out)["verdict"]["policy"] == "strict"


UNREADABLE = bytes(range(256)) * 4  # no scanner covers it: unverified


def test_unverified_is_its_own_gate(tmp_path: Path) -> None:
    """Unverified files fail whatever fail_on says, unless the policy turns the switch off."""
    sample = tmp_path / "blob.bin"
    sample.write_bytes(UNREADABLE)
    report = scan_paths(sample)
    [finding] = report.findings
    assert finding.category == "unverified" and finding.severity is Severity.MEDIUM
    high_gate = load_policy(write_policy(tmp_path, "fail_on: high\n"))
    assert high_gate.apply(report).failing(Severity.HIGH) == (finding,)
    switched_off = load_policy(write_policy(tmp_path, "fail_on: low\nfail_on_unverified: false\n"))
    assert switched_off.apply(report).failing(Severity.LOW) == ()


def test_unverified_switch_on_the_command_line(tmp_path: Path) -> None:
    sample = tmp_path / "blob.bin"
    sample.write_bytes(UNREADABLE)
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", "--fail-on", "critical", str(sample)]).exit_code == 1
    args = ["scan", "--no-fail-on-unverified", "--fail-on", "critical", str(sample)]
    assert runner.invoke(cli, args).exit_code == 0
    research = runner.invoke(cli, ["scan", "--policy", "permissive-research", str(sample)])
    assert research.exit_code == 0, research.stdout


def _waiver(tmp_path: Path, key: str, value: str) -> str:
    return (
        f"exceptions:\n  - rule: code-trust-remote-code\n    {key}: '{value}'\n"
        "    reason: remote code reviewed in SEC-9\n    expires: 2999-01-01\n"
    )


REMOTE_CODE_CONFIG = b'{"auto_map": {"AutoModel": "modeling_x.Model"}}'
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "key, value, waived",
    [
        ("repo", "acme/*", True),
        ("repo", "other/*", False),
        ("commit", COMMIT[:12], True),
        ("commit", "fedcba9876543", False),
    ],
)
def test_waiver_by_repo_and_commit_of_a_cached_snapshot(
    tmp_path: Path, key: str, value: str, waived: bool
) -> None:
    snapshot = tmp_path / "models--acme--chat" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_bytes(REMOTE_CODE_CONFIG)
    policy = load_policy(write_policy(tmp_path, _waiver(tmp_path, key, value)))
    report = policy.apply(scan_paths(snapshot))
    remote = [f for f in report.findings if f.rule_id == "code-trust-remote-code"]
    assert remote and all(bool(f.waiver) is waived for f in remote)


def test_waiver_by_file_digest_follows_the_bytes(tmp_path: Path) -> None:
    import hashlib

    from modeltrust.config import ScanConfig
    from modeltrust.engine import scan

    config = tmp_path / "config.json"
    config.write_bytes(REMOTE_CODE_CONFIG)
    digest = hashlib.sha256(REMOTE_CODE_CONFIG).hexdigest()
    policy = load_policy(write_policy(tmp_path, _waiver(tmp_path, "sha256", digest)))
    assert policy.needs_digests
    report = policy.apply(scan(ScanConfig(targets=(str(config),), hash_files=True)))
    assert all(f.waiver for f in report.findings if f.rule_id == "code-trust-remote-code")
    config.write_bytes(REMOTE_CODE_CONFIG + b" ")  # any change voids the waiver
    report = policy.apply(scan(ScanConfig(targets=(str(config),), hash_files=True)))
    assert not any(f.waiver for f in report.findings)
    runner = CliRunner()
    assert runner.invoke(cli, ["scan", "--policy", str(tmp_path / "policy.yaml"), str(config)]).exit_code == 1


def test_waiver_by_hub_path() -> None:
    from modeltrust.findings import Finding, Location, ScanReport
    from modeltrust.policy import Policy, Waiver

    finding = Finding(
        "code-trust-remote-code", Severity.HIGH, Location(f"hf://acme/chat@{COMMIT}/config.json"), "m"
    )
    waiver = Waiver("*", "reviewed", datetime.date(2999, 1, 1), repo="acme/chat", commit=COMMIT)
    report = Policy(waivers=(waiver,)).apply(ScanReport((), (finding,)))
    assert report.findings[0].waiver and not report.failing(Severity.LOW)
    elsewhere = Finding(
        "code-trust-remote-code", Severity.HIGH, Location(f"hf://evil/chat@{COMMIT}/config.json"), "m"
    )
    assert Policy(waivers=(waiver,)).apply(ScanReport((), (elsewhere,))).failing(Severity.LOW)


@pytest.mark.parametrize(
    "body, message",
    [
        ("fail_on_unverified: maybe\n", "true or false"),
        ("exceptions:\n  - rule: x\n    reason: r\n    expires: 2999-01-01\n    sha256: abc\n", "64 hex"),
        (
            "exceptions:\n  - rule: x\n    reason: r\n    expires: 2999-01-01\n    commit: main\n",
            "commit sha",
        ),
    ],
)
def test_bad_origin_waivers_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(write_policy(tmp_path, body))
