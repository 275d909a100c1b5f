"""What a BOM says, worked out from a scan report: the models and datasets
that were vetted, their files, lineage and findings, as typed values with
stable references. No CycloneDX here (document.py renders it), so this part
costs no import time and can be tested on its own.

Targets: a Hub repo (hf://...), a local folder shaped like a Hub repo, or a
single file. A model repo or folder is one model; a dataset repo (or a folder
whose card is a dataset card) is one dataset; a single weights file is a model
of its own.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..findings import DataFile, DatasetSummary, Finding, ScanReport, Severity
from ..modelcard import Card, ModelConfig, parse_card, read_card, read_config
from .tensors import TensorFacts, tensor_facts

DEFAULT_ENDPOINT = "https://huggingface.co"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?$")
_WEIGHTS = {"safetensors", "gguf", "onnx", "pytorch", "pytorch-legacy", "pickle", "joblib", "hdf5", "keras",
            "tf-savedmodel", "savedmodel"}  # fmt: skip
"""Formats and scanners of model weights: a folder with any is a model."""
_CACHE_SNAPSHOT = re.compile(
    r"/(?P<kind>models|datasets)--(?P<repo>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})$"
)
_REPO_LEVEL_UNCHECKED = ("hub-unverified-offline", "hub-remote-unverified")


@dataclass(frozen=True, slots=True)
class FileEntry:
    ref: str
    name: str
    """Path inside the model or dataset."""
    size: int
    sha256: str | None
    format: str
    scanner: str
    hub_hash: str = ""
    """For Hub files: matched, mismatch or not-checked (offline, --remote); else empty."""
    data: DataFile | None = None
    """What a Parquet/Arrow file's own metadata says (rows, columns)."""


@dataclass(frozen=True, slots=True)
class Lineage:
    """A model this one was derived from."""

    ref: str
    repo_id: str
    declared_in: str
    """'model card' (base_model) or 'config.json' (_name_or_path)."""
    relation: str = ""


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    ref: str
    repo_id: str
    """Hub id (org/name) or, for a local folder, its name."""
    version: str = ""
    card: Card | None = None
    files: tuple[str, ...] = ()
    """File refs, when the dataset itself was scanned."""
    scanned: bool = False
    url: str = ""
    summary: DatasetSummary | None = None
    """Features, splits and row counts from the data files' metadata."""
    identity: str = ""
    """Where the repo id and commit come from when not from the Hub itself."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    ref: str
    name: str
    repo_id: str = ""
    version: str = ""
    author: str = ""
    url: str = ""
    card_url: str = ""
    card: Card | None = None
    config: ModelConfig | None = None
    tensors: TensorFacts | None = None
    files: tuple[str, ...] = ()
    bases: tuple[Lineage, ...] = ()
    datasets: tuple[str, ...] = ()
    """Dataset refs."""
    identity: str = ""
    """Where the repo id and commit come from when not from the Hub itself."""
    hub_facts: tuple[tuple[str, str], ...] = ()
    """What the Hub said about the repo: requested revision, gating, last change."""


@dataclass(frozen=True, slots=True)
class Issue:
    """A finding and the component it affects."""

    ref: str
    finding: Finding
    affects: str


@dataclass(frozen=True, slots=True)
class Inventory:
    root_ref: str
    root_name: str
    root_kind: str
    """'model' or 'dataset'."""
    models: tuple[ModelEntry, ...]
    datasets: tuple[DatasetEntry, ...]
    files: tuple[FileEntry, ...]
    issues: tuple[Issue, ...]
    targets: tuple[str, ...] = ()
    loose_files: tuple[str, ...] = ()
    """Refs of files no target claims (listed under the root rather than lost)."""
    mtime: float = 0.0
    """Newest modification time of the scanned files (a reproducible timestamp)."""
    hub_time: str = ""
    """The newest Hub commit time among the targets, ISO 8601, when known."""


@dataclass
class _Target:
    text: str
    kind: str  # model | dataset
    prefix: str
    """Display-path prefix of the target's files ('' for a single file)."""
    record: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    """relative name -> Artifact"""
    cache: tuple[str, str, Path] | None = None
    """A local Hugging Face cache snapshot: (repo id, commit, the repo's cache
    folder), as its path says (not checked against the Hub)."""

    @property
    def repo_id(self) -> str:
        return str(self.record.get("repo_id") or (self.cache[0] if self.cache else ""))

    @property
    def commit(self) -> str:
        return str(self.record.get("commit") or (self.cache[1] if self.cache else ""))


def hub_purl(repo_id: str, commit: str = "") -> str:
    from urllib.parse import quote

    parts = [quote(p, safe=".-_") for p in repo_id.split("/")]
    return "pkg:huggingface/" + "/".join(parts) + (f"@{commit.lower()}" if commit else "")


def build_inventory(report: ScanReport, endpoint: str | None = None) -> Inventory:
    endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
    targets = _targets(report)
    files: list[FileEntry] = []
    models: list[ModelEntry] = []
    datasets: dict[str, DatasetEntry] = {}
    owners: dict[str, str] = {}  # display path -> file ref
    repo_refs: dict[str, str] = {}  # hub uri / target text -> component ref
    unchecked = {f.location.path for f in report.findings if f.rule_id in _REPO_LEVEL_UNCHECKED}
    mismatched = {f.location.path for f in report.findings if f.rule_id == "hub-hash-mismatch"}
    used_refs: set[str] = set()
    data_files = {f.path: f for d in report.datasets for f in d.files}
    for target in targets:
        record = target.record
        local_files = _readable_files(target)
        card = _card(local_files, record)
        summary = _summary_for(target, report.datasets)
        is_dataset = target.kind == "dataset" or (not record and _is_dataset(card, summary, target))
        target.kind = "dataset" if is_dataset else "model"
        base = _component_ref(target, is_dataset, used_refs)
        repo_refs[record.get("uri") or target.text] = base
        entries = []
        for name, artifact in sorted(target.files.items()):
            hub_hash = ""
            if record:
                uri = record.get("uri", "")
                if artifact.path in mismatched:
                    hub_hash = "mismatch"
                elif uri in unchecked or artifact.sha256 is None:
                    hub_hash = "not-checked"
                else:
                    hub_hash = "matched"
            ref = f"{base}#file:{name}" if name else f"{base}#file"
            data = data_files.get(artifact.path)
            entry = FileEntry(ref, name or Path(artifact.path).name, artifact.size, artifact.sha256,
                              artifact.format, artifact.scanner, hub_hash, data)  # fmt: skip
            entries.append(entry)
            owners[artifact.path] = ref
        files.extend(entries)
        file_refs = tuple(e.ref for e in entries)
        if is_dataset:
            dataset = _dataset_entry(target, base, card, file_refs, endpoint, summary)
            datasets[dataset.repo_id] = dataset
            continue
        model, referenced = _model_entry(target, base, card, local_files, file_refs, endpoint)
        models.append(model)
        for repo_id in referenced:
            datasets.setdefault(repo_id, _referenced_dataset(repo_id, endpoint))
    loose = [a for a in report.artifacts if a.path not in owners]
    for artifact in loose:  # no target claims it: still listed, under the root
        ref = f"root#file:{artifact.path}"
        files.append(FileEntry(ref, artifact.path, artifact.size, artifact.sha256, artifact.format,
                               artifact.scanner, "", data_files.get(artifact.path)))  # fmt: skip
        owners[artifact.path] = ref
    models = _with_dataset_refs(models, datasets)
    issues = _issues(report, owners, repo_refs)
    kind = "dataset" if targets and all(t.kind == "dataset" for t in targets) else "model"
    name = " ".join(report.targets) if report.targets else "modeltrust"
    commit_times = [str(t.record["last_modified"]) for t in targets if t.record.get("last_modified")]
    return Inventory(
        root_ref="root",
        root_name=name,
        root_kind=kind,
        models=tuple(models),
        datasets=tuple(sorted(datasets.values(), key=lambda d: d.ref)),
        files=tuple(files),
        issues=tuple(issues),
        loose_files=tuple(f"root#file:{a.path}" for a in loose),
        targets=report.targets,
        mtime=_newest_mtime(report),
        hub_time=max(commit_times, default=""),
    )


def _targets(report: ScanReport) -> list[_Target]:
    """Each target with its files (by name inside the target) and, for Hub
    targets, its source record (the records follow the Hub targets' order)."""
    records = list(report.sources)
    targets: list[_Target] = []
    for text in report.targets:
        record = next((r for r in records if _names_record(text, r)), None)
        if record is not None:
            records.remove(record)
            kind = "dataset" if record.get("repo_type") == "dataset" else "model"
            targets.append(_Target(text, kind, str(record.get("uri", "")) + "/", dict(record)))
        else:
            prefix = text if text.endswith("/") else text + "/"
            cache = _cache_snapshot(text)
            kind = "dataset" if cache is not None and cache[3] == "datasets" else "model"
            targets.append(_Target(text, kind, prefix, cache=cache[:3] if cache is not None else None))
    for artifact in report.artifacts:
        for target in targets:
            if artifact.path == target.text and not target.record:
                target.prefix = ""
                target.files[""] = artifact
                break
            if artifact.path.startswith(target.prefix):
                target.files[artifact.path[len(target.prefix) :]] = artifact
                break
    return targets


def _cache_snapshot(text: str) -> tuple[str, str, Path, str] | None:
    """(repo id, commit, repo cache folder, kind) for a folder inside the
    Hugging Face cache layout `models--ORG--NAME/snapshots/<commit>`."""
    try:
        path = Path(text).resolve()
    except (OSError, RuntimeError):
        return None
    match = _CACHE_SNAPSHOT.search(path.as_posix())
    if match is None or not path.is_dir():
        return None
    repo = match["repo"].replace("--", "/", 1)
    if not _HUB_ID.match(repo):
        return None
    return repo, match["commit"], path.parents[1], match["kind"]


def _names_record(text: str, record: dict[str, Any]) -> bool:
    """Whether target `text` is the Hub repo of this source record (parsed as the
    engine parses targets; an existing local path is never a Hub target)."""
    from ..sources.hub import parse_target

    hub = parse_target(text) or (None if os.path.exists(text) else parse_target(text, assume_hub=True))
    return (
        hub is not None
        and hub.repo_id == record.get("repo_id")
        and hub.repo_type == (record.get("repo_type") or "model")
    )


def _card(local_files: dict[str, Path], record: dict[str, Any]) -> Card | None:
    readme = local_files.get("README.md")
    card = read_card(readme) if readme is not None else None
    if card is None and record:
        return _card_from_record(record)
    return card


def _card_from_record(record: dict[str, Any]) -> Card | None:
    """What the Hub's own card data says, when README.md was not fetched."""
    import json

    keys = ("license", "base_model", "datasets", "pipeline_tag", "library_name", "tags")
    meta = {k: record[k] for k in keys if record.get(k) is not None}
    if not meta:
        return None
    return parse_card("---\n" + json.dumps(meta) + "\n---\n")  # JSON is YAML


def _is_dataset(card: Card | None, summary: DatasetSummary | None, target: _Target) -> bool:
    """A local folder is a dataset when its card is a dataset card or the data
    files' metadata describes a dataset, and nothing in it is model weights."""
    if any(a.format in _WEIGHTS or a.scanner in _WEIGHTS for a in target.files.values()):
        return False
    if card is not None and card.pipeline_tag:
        return False
    return (card is not None and card.dataset_keys) or summary is not None


def _summary_for(target: _Target, summaries: tuple[DatasetSummary, ...]) -> DatasetSummary | None:
    names = {target.text.rstrip("/"), str(target.record.get("uri", "")).rstrip("/")} - {""}
    return next((d for d in summaries if d.root.rstrip("/") in names), None)


def _readable_files(target: _Target) -> dict[str, Path]:
    """Files whose content the BOM may read (card, config, headers): for a
    local folder only those that resolve inside it, so that a README.md
    symlinked to a secret elsewhere never lands in the document. Hub files
    were downloaded by us into the cache (whose snapshots link to its blobs)."""
    files = {n: Path(a.local_path) for n, a in target.files.items() if a.local_path}
    if target.record or not target.prefix:
        return files
    try:
        # A cache snapshot's files link to the repo folder's blobs/.
        root = target.cache[2] if target.cache is not None else Path(target.text).resolve()
        return {n: p for n, p in files.items() if p.resolve().is_relative_to(root)}
    except (OSError, RuntimeError):  # a link loop: read nothing
        return {}


def _component_ref(target: _Target, is_dataset: bool, used: set[str]) -> str:
    if target.repo_id:
        repo, commit = target.repo_id, target.commit
        ref = f"dataset:{repo}@{commit}" if is_dataset else hub_purl(repo, commit)
    else:
        name = PurePosixPath(target.text.rstrip("/")).name or target.text
        ref = f"{'dataset' if is_dataset else 'model'}:{name}"
    unique, n = ref, 1
    while unique in used:
        n += 1
        unique = f"{ref}~{n}"
    used.add(unique)
    return unique


def _model_entry(
    target: _Target,
    ref: str,
    card: Card | None,
    local_files: dict[str, Path],
    file_refs: tuple[str, ...],
    endpoint: str,
) -> tuple[ModelEntry, tuple[str, ...]]:
    record = target.record
    config_path = local_files.get("config.json")
    config = read_config(config_path) if config_path is not None else None
    if config is None and record.get("model_type"):
        archs = record.get("architectures")
        config = ModelConfig(
            tuple(str(a) for a in archs) if isinstance(archs, list) else (),
            str(record.get("model_type") or ""),
        )
    repo_id, commit = target.repo_id, target.commit
    name = repo_id or (card.name or card.title if card is not None else "")
    if not name:
        name = PurePosixPath(target.text.rstrip("/")).name or target.text
    bases = _lineage(card, config, repo_id)
    referenced = tuple(d for d in (card.datasets if card else ()) if _HUB_ID.match(d))
    url = f"{endpoint}/{repo_id}" if repo_id else ""
    model = ModelEntry(
        ref=ref,
        name=name,
        repo_id=repo_id,
        version=commit,
        author=str(record.get("author") or ""),
        url=url,
        card_url=f"{url}/blob/{commit}/README.md" if url and "README.md" in target.files else "",
        card=card,
        config=config,
        tensors=tensor_facts(local_files),
        files=file_refs,
        bases=bases,
        datasets=referenced,
        identity=_identity(target),
        hub_facts=_hub_facts(record),
    )
    return model, referenced


def _hub_facts(record: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    facts = []
    if record:
        facts.append(("hub:requested-revision", str(record.get("requested_revision") or "main")))
    for key, name in (
        ("gated", "hub:gated"),
        ("private", "hub:private"),
        ("last_modified", "hub:last-modified"),
    ):
        value = record.get(key)
        if value is not None:
            facts.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return tuple(facts)


def _identity(target: _Target) -> str:
    return "hugging face cache path (not checked against the Hub)" if target.cache is not None else ""


def _lineage(card: Card | None, config: ModelConfig | None, own_id: str) -> tuple[Lineage, ...]:
    relation = card.base_model_relation if card is not None else ""
    bases = [
        Lineage(hub_purl(b), b, "model card", relation)
        for b in (card.base_models if card is not None else ())
        if _HUB_ID.match(b) and b != own_id
    ]
    hint = config.base_model_hint if config is not None else ""
    if not bases and hint and hint != own_id:
        bases.append(Lineage(hub_purl(hint), hint, "config.json"))
    return tuple(bases)


def _dataset_entry(
    target: _Target,
    ref: str,
    card: Card | None,
    file_refs: tuple[str, ...],
    endpoint: str,
    summary: DatasetSummary | None,
) -> DatasetEntry:
    repo_id = target.repo_id or PurePosixPath(target.text.rstrip("/")).name or target.text
    return DatasetEntry(
        ref=ref,
        repo_id=repo_id,
        version=target.commit,
        card=card,
        files=file_refs,
        scanned=True,
        url=f"{endpoint}/datasets/{repo_id}" if target.repo_id else "",
        identity=_identity(target),
        summary=summary,
    )


def _referenced_dataset(repo_id: str, endpoint: str) -> DatasetEntry:
    return DatasetEntry(ref=f"dataset:{repo_id}", repo_id=repo_id, url=f"{endpoint}/datasets/{repo_id}")


def _with_dataset_refs(models: list[ModelEntry], datasets: dict[str, DatasetEntry]) -> list[ModelEntry]:
    """Card dataset ids -> the refs of their components (a dataset scanned in
    the same run is the one the card names)."""
    from dataclasses import replace

    return [replace(m, datasets=tuple(datasets[d].ref for d in m.datasets if d in datasets)) for m in models]


def _issues(report: ScanReport, owners: dict[str, str], repo_refs: dict[str, str]) -> list[Issue]:
    """Findings at or above low, and any finding that fails the gate (an
    unverified file may be info and still fail), each with the component it
    affects: the file, else the repo it is about, else the root."""
    issues: list[Issue] = []
    used: set[str] = set()
    failing = set(report.failing(Severity.CRITICAL))  # below critical: only the unverified ones
    for finding in report.findings:
        if finding.severity < Severity.LOW and finding not in failing:
            continue
        path = finding.location.path
        affects = owners.get(path) or repo_refs.get(path) or _enclosing(path, repo_refs) or "root"
        key = f"{finding.location}|{finding.subject}|{finding.message}"
        ref = f"finding:{finding.rule_id}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        if ref in used:
            continue
        used.add(ref)
        issues.append(Issue(ref, finding, affects))
    return issues


def _enclosing(path: str, repo_refs: dict[str, str]) -> str:
    for prefix, ref in repo_refs.items():
        if path.startswith(prefix.rstrip("/") + "/"):
            return ref
    return ""


def _newest_mtime(report: ScanReport) -> float:
    newest = 0.0
    for artifact in report.artifacts:
        if artifact.local_path:
            try:
                newest = max(newest, Path(artifact.local_path).stat().st_mtime)
            except OSError:
                continue
    return newest
