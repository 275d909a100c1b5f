"""Shared checks for BOM tests: schema validation with cyclonedx-python-lib's
strict validator (the official CycloneDX JSON schemas it ships), golden-file
normalisation, and lookups in a BOM document."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z, as SOURCE_DATE_EPOCH


@functools.cache
def _validator(spec: str) -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator({"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[spec])


def assert_valid(text: str, spec: str) -> None:
    document = json.loads(text)
    assert document["specVersion"] == spec
    assert document["$schema"] == f"http://cyclonedx.org/schema/bom-{spec}.schema.json"
    errors = _validator(spec).validate_str(text, all_errors=True)
    messages = [str(e) for e in errors] if errors is not None else []
    assert not messages, "\n".join(messages[:5])


def normalised(text: str, hub_url: str = "") -> str:
    """What may differ between machines and releases: the tool version, the rule
    and policy digests, the serial number derived from them, the Hub's address."""
    doc = json.loads(text.replace(hub_url, "<hub>") if hub_url else text)
    doc["serialNumber"] = "urn:uuid:<derived>"
    for tool in doc["metadata"]["tools"]["components"]:
        tool["version"] = "<version>"
    for prop in doc["metadata"]["properties"]:
        if prop["name"] in ("modeltrust:rules:sha256", "modeltrust:policy:sha256"):
            prop["value"] = "<digest>"
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def check_golden(name: str, text: str, hub_url: str = "") -> None:
    """Regenerate with MODELTRUST_UPDATE_GOLDEN=1 after checking the change is right."""
    golden = GOLDEN / name
    actual = normalised(text, hub_url)
    if os.environ.get("MODELTRUST_UPDATE_GOLDEN"):
        golden.write_text(actual)
    assert actual == golden.read_text()


def components(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in doc.get("components", []) if c["type"] == kind]


def props(obj: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in obj.get("properties", []) if p["name"] == name]


def sha256_of(component: dict[str, Any]) -> str | None:
    hashes = [h["content"] for h in component.get("hashes", []) if h["alg"] == "SHA-256"]
    return hashes[0] if hashes else None


def depends_on(doc: dict[str, Any], ref: str) -> list[str]:
    for dep in doc.get("dependencies", []):
        if dep["ref"] == ref:
            return list(dep.get("dependsOn", []))
    raise AssertionError(f"no dependency entry for {ref}")


def strip_tmp(text: str, tmp: Path) -> str:
    return re.sub(re.escape(str(tmp)) + r"/?", "", text)
