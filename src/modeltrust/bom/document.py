"""The CycloneDX ML-BOM document: built with cyclonedx-python-lib, extended
with `modelCard` and `data` (extension.py), validated with the library's strict
validator against the official 1.6 or 1.7 schema before anyone sees it.

Imported only when a BOM is asked for (cyclonedx costs ~0.2 s to import).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.contact import OrganizationalContact
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityAdvisory,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6, JsonV1Dot7
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import fixup_id
from packageurl import PackageURL

from ..errors import ModelTrustError
from ..findings import DatasetSummary, ScanReport, Severity
from ..modelcard import Card
from ..rules import RuleSet
from . import extension as ext
from .inventory import DatasetEntry, FileEntry, Inventory, Issue, Lineage, ModelEntry

NS = "modeltrust:"
PROJECT_URL = "https://modeltrust.dev"
SPECS = {"1.6": (SchemaVersion.V1_6, JsonV1Dot6), "1.7": (SchemaVersion.V1_7, JsonV1Dot7)}
_PLACEHOLDER_SERIAL = uuid.UUID(int=0)
_SERIAL_NAMESPACE = uuid.UUID("6f0c8d1e-5b6a-4f51-9a0b-6d6f64656c74")
_SEVERITY = {
    Severity.CRITICAL: VulnerabilitySeverity.CRITICAL,
    Severity.HIGH: VulnerabilitySeverity.HIGH,
    Severity.MEDIUM: VulnerabilitySeverity.MEDIUM,
    Severity.LOW: VulnerabilitySeverity.LOW,
    Severity.INFO: VulnerabilitySeverity.INFO,
}
# A card's links are data from the repo: only plain http(s) URLs become IRIs.
_SAFE_URL = re.compile(r"^https?://[^\s<>\"{}|\\^`\x00-\x1f\x7f]{1,2000}$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_GHSA = re.compile(r"/(GHSA(?:-[0-9a-z]{4}){3})$")


class BomError(ModelTrustError):
    """The BOM could not be built or would not be valid."""


@dataclass(frozen=True, slots=True)
class Gate:
    """The policy decision the BOM records."""

    policy: str
    policy_digest: str
    fail_on: Severity
    waivers: tuple[str, ...] = ()
    """Policy exceptions in force, as text."""


def render(
    report: ScanReport,
    inventory: Inventory,
    rules: RuleSet,
    gate: Gate,
    spec: str,
    timestamp: datetime.datetime,
    reproducible: bool,
    validate: bool = False,
) -> str:
    if spec not in SPECS:
        raise BomError(f"unsupported CycloneDX version {spec!r}", hint="use 1.6 or 1.7")
    writer = SPECS[spec][1]
    serial = _PLACEHOLDER_SERIAL if reproducible else uuid.uuid4()
    bom = _bom(report, inventory, rules, gate, timestamp, serial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about refs it cannot see in our extension
        document: dict[str, Any] = json.loads(writer(bom).output_as_string())
    ext.extend(document, _model_cards(inventory), _data_blocks(inventory))
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if reproducible:
        # Derived from the content: the same inputs give the same serial number.
        digest = hashlib.sha256(text.encode()).hexdigest()
        text = text.replace(str(_PLACEHOLDER_SERIAL), str(uuid.uuid5(_SERIAL_NAMESPACE, digest)))
    if validate:
        check(text, spec)
    return text


def check(text: str, spec: str) -> None:
    """Validate with the library's strict validator against the official schema.
    Not the default at run time: jsonschema's IRI checker compiles a grammar
    on import (seconds); every document shape is validated in the tests."""
    try:
        from cyclonedx.validation.json import JsonStrictValidator

        validator = JsonStrictValidator(SPECS[spec][0])
        error = validator.validate_str(text)
    except ImportError as exc:  # the json-validation extra is missing
        raise BomError(
            f"cannot validate the BOM: {exc}", hint="pip install 'modeltrust[bom-validate]'"
        ) from None
    if error is not None:
        raise BomError(f"the CycloneDX {spec} document is not schema-valid: {error}")


def _bom(
    report: ScanReport,
    inventory: Inventory,
    rules: RuleSet,
    gate: Gate,
    timestamp: datetime.datetime,
    serial: uuid.UUID,
) -> Bom:
    root = Component(
        type=ComponentType.DATA if inventory.root_kind == "dataset" else ComponentType.MACHINE_LEARNING_MODEL,
        name=inventory.root_name,
        bom_ref="root",
        description="What modeltrust vetted: " + ", ".join(inventory.targets),
    )
    tool = Component(
        type=ComponentType.APPLICATION,
        name="modeltrust",
        version=report.tool_version or "unknown",
        external_references=[ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(PROJECT_URL))],
    )
    metadata = BomMetaData(
        tools=ToolRepository(components=[tool]),
        component=root,
        timestamp=timestamp,
        properties=_gate_properties(report, rules, gate),
    )
    components = [
        *(_model(m) for m in inventory.models),
        *_bases(inventory.models),
        *(_dataset(d) for d in inventory.datasets),
        *(_file(f) for f in inventory.files),
    ]
    failing = set(report.failing(gate.fail_on))
    return Bom(
        serial_number=serial,
        metadata=metadata,
        components=components,
        dependencies=_dependencies(inventory),
        vulnerabilities=[_vulnerability(i, rules, i.finding in failing) for i in inventory.issues],
    )


def _prop(name: str, value: object) -> Property:
    return Property(name=NS + name, value=str(value))


def _gate_properties(report: ScanReport, rules: RuleSet, gate: Gate) -> list[Property]:
    failing = report.failing(gate.fail_on)
    counts = {s: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity] += 1
    props = [
        _prop("verdict", "fail" if failing or report.errors else "pass"),
        _prop("policy", gate.policy),
        _prop("policy:sha256", gate.policy_digest),
        _prop("fail-on", gate.fail_on.label),
        _prop("fail-on-unverified", "true" if report.fail_on_unverified else "false"),
        _prop("failing-findings", len(failing)),
        _prop("rules:sha256", rules.digest),
        _prop("waived-findings", sum(1 for f in report.findings if f.waiver)),
        *(_prop(f"findings:{s.label}", counts[s]) for s in sorted(Severity, reverse=True)),
        *(_prop("policy:waiver", w) for w in gate.waivers),
        *(_prop("target", t) for t in report.targets),
        *(_prop("target-error", f"{e.target}: {e.message}") for e in report.errors),
    ]
    return props


def _licenses(card: Card | None) -> list[DisjunctiveLicense]:
    if card is None:
        return []
    found = []
    for text in card.licenses:
        spdx = fixup_id(text)
        if spdx is not None:
            found.append(DisjunctiveLicense(id=spdx))
        elif text.lower() == "other" and card.license_name:
            url = XsUri(card.license_link) if _SAFE_URL.match(card.license_link) else None
            found.append(DisjunctiveLicense(name=card.license_name, url=url))
        else:
            found.append(DisjunctiveLicense(name=text))
    return found


def _model(model: ModelEntry) -> Component:
    refs = []
    if model.url:
        refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(model.url)))
    if model.card_url:
        refs.append(ExternalReference(type=ExternalReferenceType.MODEL_CARD, url=XsUri(model.card_url)))
    purl = None
    if model.repo_id:
        org, _, name = model.repo_id.rpartition("/")
        purl = PackageURL(type="huggingface", namespace=org or None, name=name, version=model.version or None)
    card = model.card
    props = []
    if card is not None:
        props += [_prop("card:library", card.library_name)] if card.library_name else []
        props += [_prop("card:language", lang) for lang in card.languages]
    props += [_prop("lineage:base-model", f"{b.repo_id} ({b.declared_in})") for b in model.bases]
    if model.identity:
        props.append(_prop("identity", model.identity))
    props += [_prop(name, value) for name, value in model.hub_facts]
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model.name,
        version=model.version or None,
        bom_ref=model.ref,
        purl=purl,
        publisher=model.author or None,
        authors=[OrganizationalContact(name=model.author)] if model.author else None,
        description=card.description if card is not None and card.description else None,
        licenses=_licenses(card),
        external_references=refs,
        properties=props,
        pedigree=Pedigree(ancestors=[_ancestor(b) for b in model.bases]) if model.bases else None,
        tags=card.tags if card is not None else None,
    )


def _ancestor(base: Lineage) -> Component:
    """The base model as an ancestor (pedigree): identified by purl; the
    component with its bom-ref is listed once at the top level."""
    org, _, name = base.repo_id.rpartition("/")
    return Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=base.repo_id,
        purl=PackageURL(type="huggingface", namespace=org or None, name=name),
    )


def _bases(models: Iterable[ModelEntry]) -> list[Component]:
    seen: dict[str, Component] = {}
    for model in models:
        for base in model.bases:
            if base.ref in seen:
                continue
            org, _, name = base.repo_id.rpartition("/")
            props = [_prop("lineage:declared-in", base.declared_in)]
            if base.relation:
                props.append(_prop("lineage:relation", base.relation))
            seen[base.ref] = Component(
                type=ComponentType.MACHINE_LEARNING_MODEL,
                name=base.repo_id,
                bom_ref=base.ref,
                purl=PackageURL(type="huggingface", namespace=org or None, name=name),
                description="base model (not scanned)",
                properties=props,
            )
    return list(seen.values())


def _dataset(dataset: DatasetEntry) -> Component:
    refs = []
    if dataset.url:
        refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(dataset.url)))
    card = dataset.card
    props = [_prop("dataset:scanned", "true" if dataset.scanned else "false")]
    if dataset.identity:
        props.append(_prop("identity", dataset.identity))
    if card is not None:
        props += [_prop("dataset:source", s) for s in card.source_datasets]
        props += [_prop("dataset:task-category", t) for t in card.task_categories]
    summary = dataset.summary
    if summary is not None:
        props += _summary_properties(summary)
    description = card.description if card is not None and card.description else None
    if description is None and summary is not None and summary.description:
        description = summary.description
    if not dataset.scanned:
        description = "dataset named by a model card (not scanned)"
    return Component(
        type=ComponentType.DATA,
        name=dataset.repo_id,
        version=dataset.version or None,
        bom_ref=dataset.ref,
        description=description,
        licenses=_licenses(card) or _summary_license(summary),
        external_references=refs,
        properties=props,
    )


MAX_FEATURES = 500


def _summary_properties(summary: DatasetSummary) -> list[Property]:
    """Features, splits and row counts the data files' metadata declares."""
    props = [_prop("dataset:layout", summary.kind)]
    if summary.rows is not None:
        props.append(_prop("dataset:rows", summary.rows))
    for split in summary.splits:
        rows = f"{split.rows} rows" if split.rows is not None else "rows unknown"
        props.append(_prop("dataset:split", f"{split.name}: {rows}"))
    for column in summary.features[:MAX_FEATURES]:
        kind = f"{column.type} ({column.extension})" if column.extension else column.type
        props.append(_prop("dataset:feature", f"{column.name}: {kind}"))
    return props


def _summary_license(summary: DatasetSummary | None) -> list[DisjunctiveLicense]:
    if summary is None or not summary.license:
        return []
    spdx = fixup_id(summary.license)
    return [DisjunctiveLicense(id=spdx) if spdx is not None else DisjunctiveLicense(name=summary.license)]


def _file(entry: FileEntry) -> Component:
    props = [
        _prop("file:size", entry.size),
        _prop("file:format", entry.format),
        _prop("file:scanner", entry.scanner),
    ]
    if entry.hub_hash:
        props.append(_prop("hub:hash", entry.hub_hash))
    if entry.data is not None:
        if entry.data.rows is not None:
            props.append(_prop("data:rows", entry.data.rows))
        props.append(_prop("data:columns", len(entry.data.columns)))
        if entry.data.created_by:
            props.append(_prop("data:created-by", entry.data.created_by))
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=entry.sha256)] if entry.sha256 else []
    return Component(
        type=ComponentType.FILE, name=entry.name, bom_ref=entry.ref, hashes=hashes, properties=props
    )


def _dependencies(inventory: Inventory) -> list[Dependency]:
    def dep(ref: str, on: Iterable[str] = ()) -> Dependency:
        return Dependency(ref=BomRef(ref), dependencies=[Dependency(ref=BomRef(r)) for r in sorted(set(on))])

    heads = [m.ref for m in inventory.models] + [d.ref for d in inventory.datasets if d.scanned]
    deps = [dep("root", [*heads, *inventory.loose_files])]
    for model in inventory.models:
        deps.append(dep(model.ref, [*model.files, *(b.ref for b in model.bases), *model.datasets]))
    for dataset in inventory.datasets:
        deps.append(dep(dataset.ref, dataset.files))
    bases = {b.ref for m in inventory.models for b in m.bases}
    deps.extend(dep(ref) for ref in sorted(bases))
    deps.extend(dep(f.ref) for f in inventory.files)
    return deps


def _vulnerability(issue: Issue, rules: RuleSet, fails: bool) -> Vulnerability:
    finding = issue.finding
    rule = rules.rules.get(finding.rule_id)
    source = VulnerabilitySource(name="modeltrust", url=XsUri(f"{PROJECT_URL}/rules/{finding.rule_id}"))
    cwes = [int(m) for m in re.findall(r"\d+", rule.cwe)][:1] if rule is not None and rule.cwe else []
    advisories, references = [], []
    for ref in finding.references:
        if _CVE.match(ref):
            nvd = VulnerabilitySource(name="NVD", url=XsUri(f"https://nvd.nist.gov/vuln/detail/{ref}"))
            references.append(VulnerabilityReference(id=ref, source=nvd))
        elif ref.startswith(("https://", "http://")):
            advisories.append(VulnerabilityAdvisory(url=XsUri(ref)))
            ghsa = _GHSA.search(ref)
            if ghsa:
                gh = VulnerabilitySource(name="GitHub", url=XsUri(ref))
                references.append(VulnerabilityReference(id=ghsa.group(1), source=gh))
    props = [_prop("location", finding.location), _prop("scanner", finding.scanner or "none")]
    if finding.subject:
        props.append(_prop("subject", finding.subject))
    if finding.waiver:
        props.append(_prop("waiver", finding.waiver))
    if finding.category:
        props.append(_prop("category", finding.category))
    props.append(_prop("fails-gate", "true" if fails else "false"))
    rating = VulnerabilityRating(
        source=source, severity=_SEVERITY[finding.severity], method=VulnerabilityScoreSource.OTHER
    )
    return Vulnerability(
        bom_ref=issue.ref,
        id=finding.rule_id,
        source=source,
        ratings=[rating],
        cwes=cwes,
        description=f"{rule.title}. {rule.why}".strip(". ") if rule is not None else None,
        detail=f"{finding.message} (at {finding.location})",
        advisories=advisories,
        references=references,
        affects=[BomTarget(ref=issue.affects)],
        properties=props,
    )


def _model_cards(inventory: Inventory) -> dict[str, ext.ModelCard]:
    return {m.ref: _model_card(m) for m in inventory.models}


def _model_card(model: ModelEntry) -> ext.ModelCard:
    card, config, tensors = model.card, model.config, model.tensors
    params: ext.ModelParameters = {}
    if card is not None and card.pipeline_tag:
        params["task"] = card.pipeline_tag
    if config is not None and config.model_type:
        params["architectureFamily"] = config.model_type
    if config is not None and config.architectures:
        params["modelArchitecture"] = ", ".join(config.architectures)
    if model.datasets:
        params["datasets"] = [{"ref": ref} for ref in model.datasets]
    result: ext.ModelCard = {}
    if params:
        result["modelParameters"] = params
    if card is not None and card.eval_results:
        metrics: list[ext.PerformanceMetric] = []
        for r in card.eval_results:
            where = " / ".join(p for p in (r.task, r.dataset, r.split) if p)
            metric: ext.PerformanceMetric = {"type": r.metric, "value": r.value}
            if where:
                metric["slice"] = where
            metrics.append(metric)
        result["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations: ext.Considerations = {}
    if card is not None:
        if card.use_cases:
            considerations["useCases"] = list(card.use_cases)
        if card.limitations:
            considerations["technicalLimitations"] = list(card.limitations)
        if card.ethical_considerations:
            considerations["ethicalConsiderations"] = [{"name": t} for t in card.ethical_considerations]
    if considerations:
        result["considerations"] = considerations
    props: list[ext.Property] = []
    if tensors is not None:
        props.append({"name": NS + "parameters", "value": str(tensors.parameters)})
        props.extend({"name": NS + "dtype", "value": d} for d in tensors.dtypes)
        props.append({"name": NS + "parameters:source", "value": f"{tensors.format} header"})
        props.extend({"name": NS + "parameters:file", "value": f} for f in tensors.files)
    if props:
        result["properties"] = props
    return result


def _data_blocks(inventory: Inventory) -> dict[str, list[ext.ComponentData]]:
    blocks: dict[str, list[ext.ComponentData]] = {}
    for dataset in inventory.datasets:
        entry: ext.ComponentData = {"type": "dataset", "name": dataset.repo_id}
        card = dataset.card
        if card is not None and card.description:
            entry["description"] = card.description
        if dataset.url:
            entry["contents"] = {"url": dataset.url}
        blocks[dataset.ref] = [entry]
    return blocks
