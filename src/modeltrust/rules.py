"""Detection rules as data: loading the YAML in rules/ and matching imports.

Three kinds of file exist:
- `builtin`: findings raised from structure (malformed streams, dynamic calls),
- `pickle-deny`: dangerous imports, each with a severity and a reason,
- `pickle-allow`: known-safe imports, grouped under a reason.

Unknown keys are errors: a typo in a rule must not silently weaken a scan.
"""

from __future__ import annotations

import _compat_pickle
import fnmatch
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from .errors import RulesError
from .findings import Severity
from .yamlcache import YamlFileError, load_mapping

_RULE_KEYS = {"id", "severity", "title", "why", "cwe", "references", "match"}
_FILE_KEYS = {"kind", "version", "rules", "groups"}
_GROUP_KEYS = {"reason", "allow"}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    why: str
    cwe: str = ""
    references: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    source: str = ""


class ImportPattern(NamedTuple):
    """`module[:name]`; see rules/pickle/deny.yaml for the syntax."""

    module: str
    name: str
    text: str

    @classmethod
    def parse(cls, text: str) -> ImportPattern:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"pattern must be a non-empty string, got {text!r}")
        module, _, name = text.strip().partition(":")
        return cls(module=module, name=name or "*", text=text)


class Verdict(Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class ImportVerdict(NamedTuple):
    verdict: Verdict
    rule: Rule | None = None
    """The deny rule that matched (DENIED only)."""
    reason: str = ""
    """Why it is allowed (the allowlist group) or which pattern denied it."""


class AllowEntry(NamedTuple):
    pattern: ImportPattern
    reason: str


def _canonical_names(module: str, name: str) -> list[tuple[str, str]]:
    """The (module, name) pairs an import can resolve to.

    Pickle maps Python 2 names (`__builtin__`, `copy_reg`) to Python 3, and
    resolves dotted names as attribute chains, so `torch.serialization` +
    `os.system` reaches `os.system`. Every reading is checked.
    """
    pairs = [(module, name)]
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped:
        pairs.append(mapped)
    mapped_module = _compat_pickle.IMPORT_MAPPING.get(module)
    if mapped_module:
        pairs.append((mapped_module, name))
    parts = name.split(".")
    for i in range(1, len(parts)):
        pairs.append((".".join(parts[:i]), ".".join(parts[i:])))
    return pairs


def _module_matches(pattern: str, module: str) -> bool:
    return pattern == "*" or module == pattern or module.startswith(pattern + ".")


def _deny_matches(pattern: ImportPattern, module: str, name: str) -> bool:
    if not _module_matches(pattern.module, module):
        return False
    last = name.rsplit(".", 1)[-1]
    return fnmatch.fnmatchcase(name, pattern.name) or fnmatch.fnmatchcase(last, pattern.name)


def _allow_matches(pattern: ImportPattern, module: str, name: str) -> bool:
    # A dotted name is an attribute walk; only an entry that spells it out allows it.
    if "." in name and "." not in pattern.name:
        return False
    return fnmatch.fnmatchcase(module, pattern.module) and fnmatch.fnmatchcase(name, pattern.name)


def _is_dunder_walk(name: str) -> bool:
    """`Foo.__init__.__globals__` style chains reach module globals and builtins."""
    parts = name.split(".")
    return len(parts) > 1 and any(p.startswith("__") and p.endswith("__") for p in parts[1:])


@dataclass
class RuleSet:
    """All rules in force for one scan. Built once, then only read."""

    rules: dict[str, Rule] = field(default_factory=dict)
    deny: list[tuple[ImportPattern, Rule]] = field(default_factory=list)
    code_deny: list[tuple[ImportPattern, Rule]] = field(default_factory=list)
    """Calls in shipped Python code (rules/code/deny.yaml)."""
    allow: list[AllowEntry] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    digest: str = ""
    _cache: dict[tuple[str, str], ImportVerdict] = field(default_factory=dict, repr=False)

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise RulesError(
                f"rule {rule_id!r} is not defined",
                hint="the built-in rules file may be missing; reinstall modeltrust",
            ) from None

    def classify(self, module: str, name: str) -> ImportVerdict:
        key = (module, name)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._classify(module, name)
            self._cache[key] = cached
        return cached

    def _classify(self, module: str, name: str) -> ImportVerdict:
        readings = _canonical_names(module, name)
        for pattern, rule in self.deny:
            for mod, attr in readings:
                if _deny_matches(pattern, mod, attr):
                    return ImportVerdict(Verdict.DENIED, rule, f"matches {pattern.text!r}")
        if _is_dunder_walk(name):
            walk_rule = self.rules.get("pickle-attribute-access")
            return ImportVerdict(Verdict.DENIED, walk_rule, "walks dunder attributes")
        for entry in self.allow:
            for mod, attr in readings[:3]:
                if _allow_matches(entry.pattern, mod, attr):
                    return ImportVerdict(Verdict.ALLOWED, None, entry.reason)
        return ImportVerdict(Verdict.UNKNOWN)

    def classify_code_call(self, module: str, name: str) -> Rule | None:
        """The code-deny rule a call to module.name matches, if any."""
        for pattern, rule in self.code_deny:
            if _deny_matches(pattern, module, name):
                return rule
        return None


# --- loading ---------------------------------------------------------------------


def default_rules_dir() -> Path:
    """rules/ inside the installed package, or beside src/ in a checkout."""
    packaged = Path(__file__).resolve().parent / "rules"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "rules"
    if checkout.is_dir():
        return checkout
    raise RulesError("the built-in rules folder is missing", hint="reinstall modeltrust")


def _as_str_list(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where} must be a list of strings")
    return tuple(value)


def _parse_rule(raw: object, source: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{source}: every rule must be a mapping")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{source}: rule {raw.get('id')!r} has unknown keys {sorted(unknown)}")
    for key in ("id", "severity", "title", "why"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RulesError(f"{source}: rule {raw.get('id')!r} needs a non-empty {key!r}")
    try:
        severity = Severity.parse(raw["severity"])
    except ValueError as exc:
        raise RulesError(f"{source}: rule {raw['id']!r}: {exc}") from None
    return Rule(
        id=raw["id"],
        severity=severity,
        title=raw["title"].strip(),
        why=raw["why"].strip(),
        cwe=str(raw.get("cwe") or ""),
        references=_as_str_list(raw.get("references"), f"{source}: {raw['id']}.references"),
        patterns=_as_str_list(raw.get("match"), f"{source}: {raw['id']}.match"),
        source=source,
    )


def _add_file(ruleset: RuleSet, path: Path, raw: bytes, cache_dir: Path | None) -> None:
    try:
        data = load_mapping(path, raw, cache_dir)
    except YamlFileError as exc:
        raise RulesError(f"rules file {exc}") from None
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise RulesError(f"rules file {path}: unknown keys {sorted(unknown)}")
    kind = data.get("kind")
    source = str(path)
    if kind in ("builtin", "pickle-deny", "code-deny"):
        target = {"pickle-deny": ruleset.deny, "code-deny": ruleset.code_deny}.get(str(kind))
        for raw in data.get("rules") or []:
            rule = _parse_rule(raw, source)
            if target is not None and not rule.patterns:
                raise RulesError(f"{source}: deny rule {rule.id!r} needs a 'match' list")
            ruleset.rules[rule.id] = rule
            if target is not None:
                target.extend((ImportPattern.parse(text), rule) for text in rule.patterns)
    elif kind == "pickle-allow":
        for group in data.get("groups") or []:
            if not isinstance(group, dict) or set(group) - _GROUP_KEYS:
                raise RulesError(f"{source}: allow groups take only 'reason' and 'allow'")
            reason = group.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                raise RulesError(f"{source}: every allow group needs a 'reason'")
            for text in _as_str_list(group.get("allow"), f"{source}: allow"):
                pattern = ImportPattern.parse(text)
                if pattern.module in ("*", "") or pattern.module.strip("*.") == "":
                    raise RulesError(f"{source}: allow entry {text!r} must name a module")
                ruleset.allow.append(AllowEntry(pattern, reason.strip()))
    else:
        raise RulesError(
            f"rules file {path}: unknown kind {kind!r}",
            hint="expected builtin, pickle-deny, pickle-allow or code-deny",
        )
    ruleset.sources.append(source)


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.yaml") if "policies" not in p.parts)


def load_rules(
    extra: Sequence[str | Path] = (),
    directory: Path | None = None,
    cache_dir: Path | None = None,
) -> RuleSet:
    """The built-in rules plus any user files (later files override rule ids).

    `cache_dir`, when given, keeps parsed rule files as JSON keyed by content."""
    base = directory or default_rules_dir()
    paths: list[Path] = rule_files(base)
    for item in extra:
        path = Path(item)
        if not path.exists():
            raise RulesError(f"rules file {path} does not exist")
        paths.extend(rule_files(path) if path.is_dir() else [path])
    ruleset = RuleSet()
    digest = hashlib.sha256()
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RulesError(f"cannot read rules file {path}: {exc.strerror}") from exc
        _add_file(ruleset, path, raw, cache_dir)
        digest.update(raw)
    ruleset.digest = digest.hexdigest()
    return ruleset


def iter_rules(ruleset: RuleSet) -> Iterable[Rule]:
    return sorted(ruleset.rules.values(), key=lambda r: (-int(r.severity), r.id))
