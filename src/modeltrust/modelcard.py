"""Facts from a repo's model or dataset card (README.md) and config.json, read
as data only: YAML front matter through a safe loader, markdown sections
matched by their headings, JSON through `json`. Every read is bounded and every
value is type-checked, so a hostile card can make a fact missing, never wrong
in type, huge or slow.

Used by the BOM (model card, datasets, lineage, licences) and available to the
policy (allowed licences) and provenance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_CARD_BYTES = 1 << 20
MAX_FRONT_MATTER_BYTES = 256 << 10
MAX_CONFIG_BYTES = 1 << 20
MAX_ITEMS = 1000
"""Entries taken from any list in a card (datasets, tags, metrics)."""
MAX_TEXT = 4000
"""Characters kept from any free-text section."""

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*$", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)

_DATASET_KEYS = ("configs", "task_categories", "dataset_info", "size_categories")
# Section headings (lower case, matched as substrings) -> what they state.
_LIMITATION_HEADINGS = ("limitation", "out-of-scope", "out of scope", "known issues")
_ETHICS_HEADINGS = ("ethic", "bias", "risk", "fairness", "safety")
_USE_HEADINGS = ("intended use", "intended uses", "uses", "use cases", "direct use")


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One metric from the card's `model-index`."""

    task: str
    dataset: str
    split: str
    metric: str
    value: str


@dataclass(frozen=True, slots=True)
class Card:
    licenses: tuple[str, ...] = ()
    """As the card writes them: SPDX ids where it uses one, else names ('other')."""
    license_name: str = ""
    license_link: str = ""
    base_models: tuple[str, ...] = ()
    base_model_relation: str = ""
    """finetune, adapter, quantized, merge (the Hub's vocabulary), when stated."""
    datasets: tuple[str, ...] = ()
    pipeline_tag: str = ""
    library_name: str = ""
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    name: str = ""
    """model-index name or a dataset's pretty_name."""
    title: str = ""
    """The first level-1 heading of the card."""
    description: str = ""
    """The first paragraph of prose after the title."""
    eval_results: tuple[EvalResult, ...] = ()
    limitations: tuple[str, ...] = ()
    ethical_considerations: tuple[str, ...] = ()
    use_cases: tuple[str, ...] = ()
    source_datasets: tuple[str, ...] = ()
    task_categories: tuple[str, ...] = ()
    dataset_keys: bool = False
    """The front matter uses keys only dataset cards use (configs, task_categories, ...)."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    architectures: tuple[str, ...] = ()
    model_type: str = ""
    base_model_hint: str = ""
    """`_name_or_path` when it names a Hub repo (a hint, not a claim the card makes)."""


def read_card(path: Path) -> Card | None:
    """The card in `path` (README.md), or None when absent, too big or unreadable."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CARD_BYTES:
            return None
        text = path.read_bytes()[:MAX_CARD_BYTES].decode("utf-8", "replace")
    except OSError:
        return None
    return parse_card(text)


def parse_card(text: str) -> Card:
    meta, body = _split_front_matter(text)
    sections = _sections(body)
    index_name, results = _model_index(meta.get("model-index"))
    return Card(
        licenses=_strings(meta.get("license")),
        license_name=_string(meta.get("license_name")),
        license_link=_string(meta.get("license_link")),
        base_models=_strings(meta.get("base_model")),
        base_model_relation=_string(meta.get("base_model_relation")),
        datasets=_strings(meta.get("datasets")),
        pipeline_tag=_string(meta.get("pipeline_tag")),
        library_name=_string(meta.get("library_name")),
        languages=_strings(meta.get("language")),
        tags=_strings(meta.get("tags")),
        name=index_name or _string(meta.get("pretty_name")) or _string(meta.get("model_name")),
        title=_title(body),
        description=_first_paragraph(body),
        eval_results=results,
        limitations=_matching(sections, _LIMITATION_HEADINGS),
        ethical_considerations=_matching(sections, _ETHICS_HEADINGS),
        use_cases=_matching(sections, _USE_HEADINGS),
        source_datasets=_strings(meta.get("source_datasets")),
        task_categories=_strings(meta.get("task_categories")),
        dataset_keys=any(k in meta for k in _DATASET_KEYS),
    )


def read_config(path: Path) -> ModelConfig | None:
    """Architecture facts from config.json (JSON data only; never imported)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    hint = _string(data.get("_name_or_path"))
    return ModelConfig(
        architectures=_strings(data.get("architectures")),
        model_type=_string(data.get("model_type")),
        base_model_hint=hint if re.fullmatch(r"[\w.-]+/[\w.-]+", hint) else "",
    )


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    body = text[match.end() :]
    raw = match.group(1)
    if len(raw) > MAX_FRONT_MATTER_BYTES:
        return {}, body
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        meta = yaml.load(raw, Loader=loader)  # a safe loader: data only
    except (yaml.YAMLError, RecursionError, ValueError):
        return {}, body
    return (meta if isinstance(meta, dict) else {}), body


def _string(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value).strip()[:MAX_TEXT]
    return ""


def _strings(value: object) -> tuple[str, ...]:
    items: Iterable[object] = value[:MAX_ITEMS] if isinstance(value, list) else (value,)
    seen = dict.fromkeys(s for s in (_string(v) for v in items) if s)
    return tuple(seen)


def _model_index(value: object) -> tuple[str, tuple[EvalResult, ...]]:
    """The first model-index entry's name and every metric it reports."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return "", ()
    name = _string(value[0].get("name"))
    results: list[EvalResult] = []
    for entry in value[:MAX_ITEMS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("results"), list):
            continue
        for result in entry["results"][:MAX_ITEMS]:
            if isinstance(result, dict):
                results.extend(_metrics(result))
            if len(results) >= MAX_ITEMS:
                return name, tuple(results[:MAX_ITEMS])
    return name, tuple(results)


def _metrics(result: dict[Any, Any]) -> list[EvalResult]:
    task = result.get("task") if isinstance(result.get("task"), dict) else {}
    dataset = result.get("dataset") if isinstance(result.get("dataset"), dict) else {}
    assert isinstance(task, dict) and isinstance(dataset, dict)
    task_name = _string(task.get("type")) or _string(task.get("name"))
    dataset_name = _string(dataset.get("name")) or _string(dataset.get("type"))
    split = _string(dataset.get("split"))
    metrics = result.get("metrics") if isinstance(result.get("metrics"), list) else []
    assert isinstance(metrics, list)
    found = []
    for metric in metrics[:MAX_ITEMS]:
        if not isinstance(metric, dict):
            continue
        label = _string(metric.get("type")) or _string(metric.get("name"))
        value = _string(metric.get("value"))
        if label and value:
            found.append(EvalResult(task_name, dataset_name, split, label, value))
    return found


def _sections(body: str) -> list[tuple[str, str]]:
    """(heading, text) for every markdown section; code blocks are dropped
    first so that a `# comment` in a snippet is not a heading."""
    prose = _FENCE.sub("", body)
    headings = list(_HEADING.finditer(prose))
    sections = []
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(prose)
        level = len(match.group(1))
        # A section runs on through its sub-sections.
        for later in headings[i + 1 :]:
            if len(later.group(1)) <= level:
                end = later.start()
                break
        else:
            end = len(prose)
        text = _clean(prose[match.end() : end])
        sections.append((match.group(2).strip(), text))
    return sections


def _matching(sections: list[tuple[str, str]], keys: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for heading, text in sections:
        lowered = heading.lower()
        if text and any(key in lowered for key in keys) and text not in found:
            found.append(text)
    # A section and its own sub-section both match: keep the outer one only.
    return tuple(t for t in found if not any(t != other and t in other for other in found))


def _clean(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text[:MAX_TEXT]


def _title(body: str) -> str:
    for match in _HEADING.finditer(_FENCE.sub("", body)):
        if len(match.group(1)) == 1:
            return match.group(2).strip()[:200]
    return ""


def _first_paragraph(body: str) -> str:
    prose = _FENCE.sub("", re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL))
    for block in re.split(r"\n\s*\n", prose):
        lines = [ln.strip() for ln in block.strip().splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith(("#", "|", "<", "!", "-", "*", ">"))]
        if lines:
            return " ".join(lines)[:MAX_TEXT]
    return ""
