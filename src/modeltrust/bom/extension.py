"""The CycloneDX fields cyclonedx-python-lib does not model yet: a component's
`modelCard` (machine-learning-model) and `data` (data components), both in the
1.6 and 1.7 schemas. Typed here, in one place, after the schema's definitions
(`modelCard`, `componentData`), and added to the document the library
serialized; the final document is then validated against the official schema,
so a mistake here cannot produce an invalid BOM. When the library gains these
models, this module is what goes away.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypedDict

# --- modelCard (schema: definitions.modelCard) -------------------------------


class Property(TypedDict):
    name: str
    value: str


class DatasetRef(TypedDict):
    ref: str
    """bom-ref of a data component."""


class ModelParameters(TypedDict, total=False):
    task: str
    architectureFamily: str
    modelArchitecture: str
    datasets: list[DatasetRef]


class PerformanceMetric(TypedDict, total=False):
    type: str
    value: str
    slice: str


class QuantitativeAnalysis(TypedDict, total=False):
    performanceMetrics: list[PerformanceMetric]


class Risk(TypedDict, total=False):
    name: str
    mitigationStrategy: str


class Considerations(TypedDict, total=False):
    useCases: list[str]
    technicalLimitations: list[str]
    ethicalConsiderations: list[Risk]


class ModelCard(TypedDict, total=False):
    modelParameters: ModelParameters
    quantitativeAnalysis: QuantitativeAnalysis
    considerations: Considerations
    properties: list[Property]


# --- data (schema: definitions.componentData) --------------------------------


class DataContents(TypedDict, total=False):
    url: str
    properties: list[Property]


class ComponentData(TypedDict, total=False):
    type: Literal["source-code", "configuration", "dataset", "definition", "other"]
    name: str
    description: str
    contents: DataContents


def _components(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every component object in the document, nested ones included."""
    stack: list[dict[str, Any]] = []
    metadata = document.get("metadata") or {}
    if isinstance(metadata.get("component"), dict):
        stack.append(metadata["component"])
    stack.extend(c for c in document.get("components") or [] if isinstance(c, dict))
    while stack:
        component = stack.pop()
        yield component
        stack.extend(c for c in component.get("components") or [] if isinstance(c, dict))


def extend(
    document: dict[str, Any],
    model_cards: Mapping[str, ModelCard],
    data: Mapping[str, list[ComponentData]],
) -> None:
    """Add `modelCard` and `data` to the components with these bom-refs.
    A ref that names no component is a bug in the caller: it raises."""
    wanted = set(model_cards) | set(data)
    for component in _components(document):
        ref = component.get("bom-ref")
        if not isinstance(ref, str):
            continue
        if ref in model_cards:
            component["modelCard"] = dict(model_cards[ref])
        if ref in data:
            component["data"] = [dict(entry) for entry in data[ref]]
        wanted.discard(ref)
    if wanted:
        raise ValueError(f"no component with bom-ref {sorted(wanted)}")
