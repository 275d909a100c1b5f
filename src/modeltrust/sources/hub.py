"""Models and datasets from the Hugging Face Hub, pinned and verified.

A target's revision (branch, tag or sha) is resolved to its commit first, and
everything after that names the commit, so the scan, the report and later the
BOM and attestation all speak of one immutable revision. Files come through
the real `huggingface_hub` client (its cache, token, endpoint and offline
mode), and every downloaded file is hashed once and compared with the Hub's
record: LFS files against their sha256, others against their git blob id.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..selection import matches_selection

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_NAME = r"[A-Za-z0-9][\w.-]*"
_HF_URI = re.compile(
    rf"^hf://(?:(?P<kind>datasets|models)/)?(?P<repo>{_NAME}/{_NAME}|{_NAME})(?:@(?P<rev>[^/\s]+))?/?$"
)
_HF_URL = re.compile(
    rf"^https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?:(?P<kind>datasets)/)?(?P<repo>{_NAME}/{_NAME})"
    r"(?:/(?:tree|blob|resolve)/(?P<rev>[^/\s]+).*)?/?$"
)
_BARE = re.compile(rf"^(?P<repo>{_NAME}/{_NAME})(?:@(?P<rev>[^/\s]+))?$")
READ_CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class HubTarget:
    repo_type: str
    """"model" or "dataset"."""
    repo_id: str
    revision: str | None = None

    @property
    def pinned(self) -> bool:
        return self.revision is not None and bool(SHA_RE.match(self.revision))

    def uri(self, commit: str | None = None) -> str:
        prefix = "hf://datasets/" if self.repo_type == "dataset" else "hf://"
        rev = commit or self.revision
        return f"{prefix}{self.repo_id}" + (f"@{rev}" if rev else "")


def parse_target(text: str, assume_hub: bool = False) -> HubTarget | None:
    """hf://[datasets/]ORG/NAME[@REV], https://huggingface.co/... URLs, or, with
    `assume_hub`, a bare ORG/NAME[@REV]. None for anything else (a local path)."""
    for pattern in (_HF_URI, _HF_URL) + ((_BARE,) if assume_hub else ()):
        match = pattern.match(text.strip())
        if match:
            kind = match.groupdict().get("kind")
            return HubTarget("dataset" if kind == "datasets" else "model", match["repo"], match["rev"])
    return None


@dataclass(frozen=True, slots=True)
class HubSettings:
    """What the CLI read from the environment (HF_ENDPOINT, HF_TOKEN, HF_HOME,
    HF_HUB_OFFLINE) and the options; the library itself reads no variables."""

    endpoint: str | None = None
    token: str | None = None
    cache_dir: str | None = None
    offline: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    assume_hub: bool = False
    remote: bool = False
    """Scan through HTTP range requests instead of downloading the files."""
    retries: int = 3
    max_workers: int = 8
    timeout: float = 20.0
    """Seconds to wait for each metadata answer from the Hub."""


@dataclass(frozen=True, slots=True)
class HubFile:
    path: str
    size: int
    blob_id: str
    sha256: str | None
    """The LFS sha256, for files stored in LFS."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the fetch found about one file or the repo (becomes a Finding)."""

    rule_id: str
    path: str
    message: str
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Revision:
    """What the Hub answered about a revision: the commit it names and the repo's
    facts (card, gating, scan status). Plain values, so that a fleet job carries it
    from the process that asked to the worker that scans."""

    commit: str
    metadata: dict[str, Any]


@dataclass
class Snapshot:
    target: HubTarget
    commit: str
    files: list[HubFile]
    metadata: dict[str, Any] = field(default_factory=dict)
    local_dir: Path | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    """path -> sha256 of the verified local bytes."""
    problems: list[Problem] = field(default_factory=list)

    def selected(self, settings: HubSettings) -> list[HubFile]:
        return [f for f in self.files if matches_selection(f.path, settings.include, settings.exclude)]


def _explain(exc: Exception, target: HubTarget) -> SourceError:
    """One line a user can act on; never the token."""
    from huggingface_hub import errors

    name = target.uri()
    if isinstance(exc, errors.GatedRepoError):
        return SourceError(f"{name} is gated", hint="accept its terms on the Hub and set HF_TOKEN")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return SourceError(
            f"{name}: repository not found", hint="check the name; private repos need HF_TOKEN"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return SourceError(f"{name}: revision {target.revision!r} not found")
    if isinstance(exc, errors.EntryNotFoundError):
        return SourceError(f"{name}: a listed file is missing on the Hub")
    if isinstance(exc, errors.OfflineModeIsEnabled) or "offline" in type(exc).__name__.lower():
        return SourceError(f"{name} is not in the local cache and HF_HUB_OFFLINE is set")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    detail = f"HTTP {status}" if status else type(exc).__name__
    if isinstance(status, int) and 400 <= status < 500 and status != 429:  # asking again will not help
        return SourceError(
            f"{name}: the Hub refused the request ({detail})", hint="check HF_TOKEN and the name"
        )
    return HubUnavailableError(
        f"{name}: the Hub did not answer ({detail})", hint="check HF_ENDPOINT and the network"
    )


class HubUnavailableError(SourceError):
    """The Hub did not answer (timeouts, 5xx, rate limits): trying later may work,
    unlike a missing or gated repo."""

    retryable = True


def _retry_after(exc: Any) -> float | None:
    """Seconds a 429 answer asks to wait (capped), or None."""
    response = getattr(exc, "response", None)
    if response is None or getattr(response, "status_code", 0) != 429:
        return None
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.0), 60.0)
    except (TypeError, ValueError):
        return 1.0


def _with_retries(call: Callable[[], Any], attempts: int) -> Any:
    """Retry server errors and timeouts with backoff; client errors are final."""
    from huggingface_hub import errors

    for attempt in range(attempts):
        try:
            return call()
        except errors.HfHubHTTPError as exc:
            status = getattr(exc.response, "status_code", 0) if exc.response is not None else 0
            wait = _retry_after(exc)
            if (status < 500 and wait is None) or attempt == attempts - 1:
                raise
            if wait is not None:  # rate limited: wait as long as the Hub asks
                time.sleep(wait)
                continue
        except Exception as exc:
            if "timeout" not in type(exc).__name__.lower() and "connect" not in type(exc).__name__.lower():
                raise
            if attempt == attempts - 1:
                raise
        time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


_RESOLVED: dict[tuple[str, str, str, str], tuple[tuple[HubFile, ...], dict[str, Any]]] = {}
"""Listings of commits resolved in this process (a fleet worker resolves a target
to its commit, then scans it pinned): commits are immutable, so this is safe."""
_RESOLVED_MAX = 256


class HubSource:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.settings.endpoint, token=self.settings.token)

    def resolve(self, target: HubTarget, revision: Revision | None = None) -> Snapshot:
        """The commit a revision names, its file list with hashes, and repo metadata.
        `revision` is the answer of `revision()` when the caller already asked for it."""
        if self.settings.offline:
            return self._resolve_offline(target)
        if revision is None and target.pinned and target.revision is not None:
            known = _RESOLVED.get(self._key(target, target.revision))
            if known is not None:  # a commit never changes: its listing is reused
                return Snapshot(target, target.revision, list(known[0]), dict(known[1]))
        api = self._api()
        try:
            resolved = revision if revision is not None else self.revision(target)
            tree = _with_retries(
                lambda: list(
                    api.list_repo_tree(
                        target.repo_id, repo_type=target.repo_type, revision=resolved.commit, recursive=True
                    )
                ),
                self.settings.retries,
            )
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises many types; each becomes one line
            raise _explain(exc, target) from None
        files = sorted(
            (
                HubFile(f.path, f.size, f.blob_id, f.lfs.sha256 if f.lfs is not None else None)
                for f in tree
                if hasattr(f, "blob_id")
            ),
            key=lambda f: f.path,
        )
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.pop(next(iter(_RESOLVED)))
        _RESOLVED[self._key(target, resolved.commit)] = (tuple(files), dict(resolved.metadata))
        return Snapshot(target, resolved.commit, files, dict(resolved.metadata))

    def _key(self, target: HubTarget, commit: str) -> tuple[str, str, str, str]:
        return (self.settings.endpoint or "", target.repo_type, target.repo_id, commit)

    def revision(self, target: HubTarget) -> Revision:
        """The commit the target's revision names and the repo's facts: one Hub call."""
        info = self.info(target)
        return Revision(str(info.sha), _metadata(info))

    def info(self, target: HubTarget) -> Any:
        """The Hub's answer about the revision (its commit sha, card, scan status): one call."""
        api = self._api()
        try:
            return _with_retries(
                lambda: self._info(api, target, self.settings.timeout), self.settings.retries
            )
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises many types; each becomes one line
            raise _explain(exc, target) from None

    @staticmethod
    def _info(api: Any, target: HubTarget, timeout: float) -> Any:
        revision = target.revision or "main"
        if target.repo_type == "model":  # models carry the Hub's own scan status
            return api.model_info(target.repo_id, revision=revision, securityStatus=True, timeout=timeout)
        return api.repo_info(target.repo_id, repo_type=target.repo_type, revision=revision, timeout=timeout)

    def _resolve_offline(self, target: HubTarget) -> Snapshot:
        """Offline: only a pinned commit already in the cache can be scanned."""
        from huggingface_hub import snapshot_download

        if not target.pinned:
            raise SourceError(f"{target.uri()}: HF_HUB_OFFLINE needs a revision pinned to a commit sha")
        try:
            local = Path(
                snapshot_download(
                    target.repo_id,
                    repo_type=target.repo_type,
                    revision=target.revision,
                    cache_dir=self.settings.cache_dir,
                    local_files_only=True,
                )
            )
        except Exception as exc:  # noqa: BLE001 - the client raises many types; each becomes one line
            raise _explain(exc, target) from None
        files = [
            HubFile(str(p.relative_to(local)), p.stat().st_size, "", None)
            for p in sorted(local.rglob("*"))
            if p.is_file()
        ]
        snapshot = Snapshot(target, str(target.revision), files, {}, local)
        snapshot.problems.append(
            Problem(
                "hub-unverified-offline",
                "",
                "offline: files come from the local cache without the Hub's hashes",
            )
        )
        return snapshot

    def download(self, snapshot: Snapshot, local_dir: str | Path | None = None) -> Path:
        """Fetch the selected files of the commit, in parallel, into the hub cache
        (resumable; a second run finds them there) or `local_dir`. A file the
        client refuses (its size disagrees with the Hub's record) is a problem
        for that file, not the end of the fetch."""
        if snapshot.local_dir is not None and local_dir is None:
            return snapshot.local_dir
        from concurrent.futures import ThreadPoolExecutor

        wanted = snapshot.selected(self.settings)
        with ThreadPoolExecutor(max_workers=max(1, self.settings.max_workers)) as pool:
            results = list(pool.map(lambda entry: self._download_one(snapshot, entry, local_dir), wanted))
        roots = {root for root in results if root is not None}
        snapshot.local_dir = Path(local_dir) if local_dir is not None else (roots.pop() if roots else None)
        if snapshot.local_dir is None:  # nothing downloaded: an empty selection
            snapshot.local_dir = Path(self.settings.cache_dir or ".") / "modeltrust-empty-selection"
            snapshot.local_dir.mkdir(parents=True, exist_ok=True)
        return snapshot.local_dir

    def _download_one(self, snapshot: Snapshot, entry: HubFile, local_dir: str | Path | None) -> Path | None:
        """Download one file; returns the snapshot root it landed in."""
        from huggingface_hub import hf_hub_download

        target = snapshot.target
        try:
            path = _with_retries(
                lambda: hf_hub_download(
                    target.repo_id, entry.path, repo_type=target.repo_type, revision=snapshot.commit,
                    cache_dir=self.settings.cache_dir, local_dir=local_dir, endpoint=self.settings.endpoint,
                    token=self.settings.token,
                ),
                self.settings.retries,
            )  # fmt: skip
        except OSError as exc:
            if "consistency check" not in str(exc).lower():
                raise _explain(exc, target) from None
            snapshot.problems.append(
                Problem(
                    "hub-hash-mismatch",
                    entry.path,
                    f"download refused: {str(exc).splitlines()[0][:200]}",
                    subject=entry.path,
                )
            )
            return None
        except Exception as exc:  # noqa: BLE001 - the client raises many types; each becomes one line
            raise _explain(exc, target) from None
        # Hash as soon as the file is here, while other downloads continue.
        _verify_file(snapshot, entry, Path(path))
        depth = len(Path(entry.path).parts)
        return Path(path).parents[depth - 1]

    def verify(self, snapshot: Snapshot) -> None:
        """Hash every selected local file once; compare with the Hub's record.
        (Files fetched by `download` were verified as they arrived.)"""
        assert snapshot.local_dir is not None
        done = set(snapshot.hashes) | {p.path for p in snapshot.problems if p.rule_id == "hub-hash-mismatch"}
        for entry in snapshot.selected(self.settings):
            if entry.path not in done:
                _verify_file(snapshot, entry, snapshot.local_dir / entry.path)


def _verify_file(snapshot: Snapshot, entry: HubFile, path: Path) -> None:
    if not path.is_file():
        snapshot.problems.append(
            Problem("hub-missing-file", entry.path, "listed on the Hub but not downloaded")
        )
        return
    sha256, blob_id, size = _digests(path, with_blob_id=entry.sha256 is None)
    snapshot.hashes[entry.path] = sha256
    if not entry.blob_id:  # offline: nothing to compare with
        return
    expected = entry.sha256 or entry.blob_id
    actual = sha256 if entry.sha256 else blob_id
    if actual != expected or size != entry.size:
        snapshot.problems.append(
            Problem(
                "hub-hash-mismatch",
                entry.path,
                f"downloaded bytes ({size} bytes, {actual[:16]}...) do not match the Hub's record "
                f"({entry.size} bytes, {expected[:16]}...)",
                subject=entry.path,
            )
        )


def _digests(path: Path, with_blob_id: bool) -> tuple[str, str, int]:
    """(sha256, git blob sha1 or "", size) in one pass over the file. The blob id
    is only needed for files outside LFS, which are small."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % size) if with_blob_id else None  # git's object id
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            sha256.update(chunk)
            if blob is not None:
                blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest() if blob is not None else "", size


def _metadata(info: Any) -> dict[str, Any]:
    """What provenance and the BOM need from the repo info and model card."""
    card = info.card_data.to_dict() if getattr(info, "card_data", None) is not None else {}
    last = getattr(info, "last_modified", None)
    security = getattr(info, "security_repo_status", None)
    return {
        "author": getattr(info, "author", None),
        "last_modified": last.isoformat() if last is not None else None,
        "private": getattr(info, "private", None),
        "gated": getattr(info, "gated", None),
        "license": card.get("license"),
        "base_model": card.get("base_model"),
        "datasets": card.get("datasets"),
        "tags": getattr(info, "tags", None) or card.get("tags"),
        "pipeline_tag": getattr(info, "pipeline_tag", None) or card.get("pipeline_tag"),
        "library_name": getattr(info, "library_name", None) or card.get("library_name"),
        "security_status": security,
    }


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")


def repo_problems(snapshot: Snapshot) -> list[Problem]:
    """Findings about the repository as a whole rather than one file."""
    problems: list[Problem] = []
    target = snapshot.target
    if not target.pinned:
        problems.append(
            Problem(
                "hub-unpinned",
                "",
                f"revision {target.revision or 'main'!r} resolved to commit {snapshot.commit}; "
                "pin the commit for a reproducible result",
                subject=target.revision or "main",
            )
        )
    names = [f.path for f in snapshot.files]
    has_license_file = any(Path(n).name.upper().startswith(("LICENSE", "LICENCE")) for n in names)
    if not snapshot.metadata.get("license") and not has_license_file and snapshot.metadata:
        problems.append(Problem("hub-no-license", "", "no license in the model card and no LICENSE file"))
    if any(n.endswith(".safetensors") for n in names):
        for name in names:
            if name.endswith(_PICKLE_SUFFIXES):
                problems.append(
                    Problem(
                        "hub-unsafe-format-alternative",
                        name,
                        "pickle-based weights ship beside safetensors; exclude them "
                        f"(--exclude '*{Path(name).suffix}') and load the safetensors",
                        subject=name,
                    )
                )
    return problems


def hub_scan_verdicts(snapshot: Snapshot) -> dict[str, str]:
    """path -> the Hub's own verdict for files it flagged (e.g. "unsafe")."""
    status = snapshot.metadata.get("security_status")
    if not isinstance(status, dict):
        return {}
    verdicts: dict[str, str] = {}
    for entry in status.get("filesWithIssues") or []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            verdicts[entry["path"]] = str(entry.get("level") or "flagged")
    return verdicts


def remote_reader(settings: HubSettings, snapshot: Snapshot, entry: HubFile) -> Any:
    """A range-request reader over one file of the commit (nothing is downloaded)."""
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    from .http import HttpReader

    target = snapshot.target
    url = hf_hub_url(
        target.repo_id,
        entry.path,
        repo_type=target.repo_type,
        revision=snapshot.commit,
        endpoint=settings.endpoint,
    )
    return HttpReader(get_session(), url, entry.size, build_hf_headers(token=settings.token))
