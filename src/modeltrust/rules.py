"""Detection rules as data: loading the YAML in rules/ and matching imports.

Three kinds of file exist:
- `builtin`: findings raised from structure (malformed streams, dynamic calls),
- `pickle-deny`: dangerous imports, each with a severity and a reason,
- `pickle-allow`: known-safe imports, grouped under a reason. Version 2 names
  each class or function exactly, by the module that defines it, with a kind
  (constructor, import-only, calls-arguments, new-only); version 1 (globs, every entry a
  constructor) is still read for users' own files.

Unknown keys are errors: a typo in a rule must not silently weaken a scan.
"""

from __future__ import annotations

import _compat_pickle
import fnmatch
import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from .errors import RulesError
from .findings import Finding, Severity
from .yamlcache import YamlFileError, load_mapping

_RULE_KEYS = {"id", "severity", "title", "why", "cwe", "references", "match", "class", "except"}
_EXCEPTION_KEYS = {"name", "reason"}
# What a finding means (README, "Severity model"); a class fixes the lowest
# severity its rules may have, so an override in a rules file cannot quietly
# turn "runs code" into a note. "unverified" is gated by its own policy switch.
CLASS_FLOOR = {
    "dangerous": Severity.CRITICAL,
    "runs-code": Severity.HIGH,
    "unverified": Severity.MEDIUM,
    "anomaly": Severity.LOW,
    "fact": Severity.INFO,
}
_FILE_KEYS = {"kind", "version", "rules", "groups"}
_GROUP_KEYS = {"reason", "allow"}
_GROUP_KEYS_V2 = {"reason", "kind", "allow"}
_ENTRY_KEYS_V2 = {"name", "kind", "calls", "reason"}
# module:qualname, both dotted identifiers (TorchScript's `__torch__` included).
_EXACT_NAME = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
# Rules that do not name their class get the one their severity implies;
# "unverified" is never implied (it changes how the gate treats a finding).
_CLASS_BY_SEVERITY = {
    Severity.CRITICAL: "dangerous",
    Severity.HIGH: "runs-code",
    Severity.MEDIUM: "anomaly",
    Severity.LOW: "anomaly",
    Severity.INFO: "fact",
}


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
    category: str = ""
    """The rule's class: dangerous, runs-code, unverified, anomaly or fact."""
    exceptions: tuple[RuleException, ...] = ()
    """Exact names the patterns would match that the rule does not deny."""
    exempt: frozenset[tuple[str, str]] = frozenset()
    """The exceptions as (module, qualname), for lookups."""


@dataclass(frozen=True, slots=True)
class RuleException:
    """One name a deny rule's module patterns cover but does not deny: a value
    type (enum, structseq, named tuple) of a module whose functions are
    dangerous, e.g. `http:HTTPStatus` under the `http` pattern. Exact
    `module:qualname` by the defining module; a reading of an import is exempt
    only when it is exactly this name."""

    module: str
    name: str
    reason: str


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


class AllowKind(Enum):
    """What an allowed name may be used for."""

    CONSTRUCTOR = "constructor"
    """Safe to call whatever the arguments."""
    IMPORT_ONLY = "import-only"
    """May be referenced (a value, a class held as data); calling it is not allowed."""
    CALLS_ARGUMENTS = "calls-arguments"
    """Safe itself, but it calls the arguments at the listed positions."""
    NEW_ONLY = "new-only"
    """A class pickle instantiates without calling it (NEWOBJ, copyreg.__newobj__:
    `cls.__new__`, then BUILD sets its state); calling it runs `__init__`,
    which reads files or calls arguments (xgboost's `Booster(model_file=...)`)."""


class ImportVerdict(NamedTuple):
    verdict: Verdict
    rule: Rule | None = None
    """The deny rule that matched (DENIED only)."""
    reason: str = ""
    """Why it is allowed (the allowlist group) or which pattern denied it."""
    kind: AllowKind | None = None
    """How an allowed name may be used (ALLOWED only)."""
    calls: tuple[int, ...] = ()
    """Argument positions the allowed callable calls (CALLS_ARGUMENTS only)."""


class AllowEntry(NamedTuple):
    pattern: ImportPattern
    reason: str
    kind: AllowKind = AllowKind.CONSTRUCTOR
    calls: tuple[int, ...] = ()
    exact: bool = False
    """Version 2: `pattern` is one module:qualname, matched exactly."""

    def verdict(self) -> ImportVerdict:
        return ImportVerdict(Verdict.ALLOWED, None, self.reason, self.kind, self.calls)


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


# A deny pattern with its position in file order (the first match wins).
_DenyEntry = tuple[int, ImportPattern, Rule]
# Python 2 module names pickle.load maps to Python 3 ones (fix_imports): `__builtin__`.
_PY2_MODULES = frozenset(
    [name.partition(".")[0] for name in _compat_pickle.IMPORT_MAPPING]
    + [module.partition(".")[0] for module, _ in _compat_pickle.NAME_MAPPING]
)
# Names longer than this are never allowed or matched (they are unknown).
MAX_NAME_CHARS = 1024
# Verdicts remembered per rule set; cleared when full (bounded memory).
_CACHE_SIZE = 65536


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
    _exact: dict[tuple[str, str], AllowEntry] | None = field(default=None, repr=False)
    _deny_index: dict[str, list[_DenyEntry]] | None = field(default=None, repr=False)
    # `*:name` deny patterns without globs, keyed by name.
    _deny_any_name: dict[str, list[_DenyEntry]] = field(default_factory=dict, repr=False)
    # How many components of a module name the deny index can match.
    _deny_depth: int = field(default=0, repr=False)
    # The other `*:` patterns, with the literal prefix of their name glob.
    _deny_any_glob: list[tuple[str, _DenyEntry]] = field(default_factory=list, repr=False)
    # Version 1 glob entries keyed by their module's first component ("" if it is a glob).
    _glob_index: dict[str, list[tuple[int, AllowEntry]]] | None = field(default=None, repr=False)
    _top_modules: frozenset[str] | None = field(default=None, repr=False)
    _found_here: dict[str, bool] = field(default_factory=dict, repr=False)

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
            if len(self._cache) >= _CACHE_SIZE:  # a pickle of a million distinct names
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def _classify(self, module: str, name: str) -> ImportVerdict:
        if len(module) + len(name) > MAX_NAME_CHARS:
            # No real module or qualified name is this long; reading every
            # dotted split of megabytes would not end. Not allowed, so unknown.
            return ImportVerdict(Verdict.UNKNOWN, None, f"name longer than {MAX_NAME_CHARS} characters")
        readings = _canonical_names(module, name)
        denied = self._denied(readings)
        if denied is not None:
            return denied
        if _is_dunder_walk(name):
            walk_rule = self.rules.get("pickle-attribute-access")
            return ImportVerdict(Verdict.DENIED, walk_rule, "walks dunder attributes")
        exact = self._exact_index()
        # Exact entries first: they carry the kind the name was allowed for.
        for reading in readings[:3]:
            entry = exact.get(reading)
            if entry is not None:
                return entry.verdict()
        globs = self._glob_entries()
        if globs:
            for mod, attr in readings[:3]:
                candidates = globs.get(mod.partition(".")[0], []) + globs.get("", [])
                for _, entry in sorted(candidates, key=lambda item: item[0]):
                    if _allow_matches(entry.pattern, mod, attr):
                        return entry.verdict()
        return ImportVerdict(Verdict.UNKNOWN)

    def names_package(self, top: str) -> bool:
        """Whether any allow or deny entry names a module of the top-level
        package `top`: a package the rules know is one a victim may have."""
        if self._top_modules is None:
            patterns = [entry.pattern for entry in self.allow]
            patterns += [pattern for pattern, _ in self.deny + self.code_deny]
            self._top_modules = frozenset(p.module.partition(".")[0] for p in patterns)
        return top in self._top_modules

    def module_may_exist(self, dotted: str) -> bool:
        """Whether a machine that loads a pickle may import `dotted`'s top-level
        module: a dotted name of identifiers whose top is in the standard
        library, named by the rules, or installed here (looked up, never
        imported). What the scanning machine lacks alone never decides it."""
        if not dotted or not all(part.isidentifier() for part in dotted.split(".")):
            return False
        top = dotted.partition(".")[0]
        if top in sys.stdlib_module_names or top in _PY2_MODULES or self.names_package(top):
            return True
        found = self._found_here.get(top)
        if found is None:
            try:
                found = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
            if len(self._found_here) >= _CACHE_SIZE:
                self._found_here.clear()
            self._found_here[top] = found
        return found

    def _glob_entries(self) -> dict[str, list[tuple[int, AllowEntry]]]:
        if self._glob_index is None:
            index: dict[str, list[tuple[int, AllowEntry]]] = {}
            for order, entry in enumerate(self.allow):
                if not entry.exact:
                    head = entry.pattern.module.partition(".")[0]
                    key = "" if any(c in head for c in "*?[") else head
                    index.setdefault(key, []).append((order, entry))
            self._glob_index = index
        return self._glob_index

    def _denied(self, readings: list[tuple[str, str]]) -> ImportVerdict | None:
        """The first deny pattern (in file order) any reading matches."""
        index = self._deny_patterns_by_module()
        # Only prefixes as deep as a pattern's module can match: a crafted name
        # of thousands of dots must not cost thousands of joins per reading.
        depth = self._deny_depth
        best: _DenyEntry | None = None
        for mod, attr in readings:
            last = attr.rpartition(".")[2]
            # `*:prefix*` globs: only names that start with the literal prefix can match.
            candidates = [
                (order, pattern, rule)
                for prefix, (order, pattern, rule) in self._deny_any_glob
                if attr.startswith(prefix) or last.startswith(prefix)
            ]
            candidates.extend(self._deny_any_name.get(attr, ()))
            if last != attr:
                candidates.extend(self._deny_any_name.get(last, ()))
            parts = mod.split(".", depth)
            for i in range(1, min(len(parts), depth) + 1):
                candidates.extend(index.get(".".join(parts[:i]), ()))
            for order, pattern, rule in candidates:
                if (
                    (best is None or order < best[0])
                    and (mod, attr) not in rule.exempt
                    and _deny_matches(pattern, mod, attr)
                ):
                    best = (order, pattern, rule)
        if best is None:
            return None
        return ImportVerdict(Verdict.DENIED, best[2], f"matches {best[1].text!r}")

    def _deny_patterns_by_module(self) -> dict[str, list[_DenyEntry]]:
        """Deny patterns (with their file order) keyed by the module they name: a
        module pattern matches itself and its submodules, so a lookup walks the
        name's prefixes instead of every pattern."""
        if self._deny_index is None:
            index: dict[str, list[_DenyEntry]] = {}
            any_name: dict[str, list[_DenyEntry]] = {}
            any_glob: list[tuple[str, _DenyEntry]] = []
            for order, (pattern, rule) in enumerate(self.deny):
                if pattern.module != "*":
                    index.setdefault(pattern.module, []).append((order, pattern, rule))
                elif any(c in pattern.name for c in "*?["):
                    prefix = re.split(r"[*?\[]", pattern.name, maxsplit=1)[0]
                    any_glob.append((prefix, (order, pattern, rule)))
                else:
                    any_name.setdefault(pattern.name, []).append((order, pattern, rule))
            self._deny_any_name = any_name
            self._deny_depth = max((name.count(".") + 1 for name in index), default=0)
            self._deny_any_glob = any_glob
            self._deny_index = index
        return self._deny_index

    def _exact_index(self) -> dict[tuple[str, str], AllowEntry]:
        if self._exact is None:
            exact: dict[tuple[str, str], AllowEntry] = {}
            for entry in self.allow:
                if entry.exact:
                    exact[(entry.pattern.module, entry.pattern.name)] = entry  # later files win
            self._exact = exact
        return self._exact

    def with_class(self, finding: Finding) -> Finding:
        """The finding labelled with its rule's class (what it means for the gate)."""
        rule = self.rules.get(finding.rule_id)
        if rule is None or finding.category == rule.category:
            return finding
        return replace(finding, category=rule.category)

    def classify_code_call(self, module: str, name: str) -> Rule | None:
        """The code-deny rule a call to module.name matches, if any."""
        for pattern, rule in self.code_deny:
            if (module, name) not in rule.exempt and _deny_matches(pattern, module, name):
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
    category = str(raw.get("class") or _CLASS_BY_SEVERITY[severity])
    if category and category not in CLASS_FLOOR:
        raise RulesError(
            f"{source}: rule {raw['id']!r}: unknown class {category!r} (one of {sorted(CLASS_FLOOR)})"
        )
    if category and severity < CLASS_FLOOR[category]:
        floor = CLASS_FLOOR[category].label
        raise RulesError(f"{source}: rule {raw['id']!r}: class {category} is at least {floor}")
    exceptions = _parse_exceptions(raw.get("except"), f"{source}: {raw['id']}.except")
    return Rule(
        id=raw["id"],
        severity=severity,
        title=raw["title"].strip(),
        why=raw["why"].strip(),
        cwe=str(raw.get("cwe") or ""),
        references=_as_str_list(raw.get("references"), f"{source}: {raw['id']}.references"),
        patterns=_as_str_list(raw.get("match"), f"{source}: {raw['id']}.match"),
        source=source,
        category=category,
        exceptions=exceptions,
        exempt=frozenset((e.module, e.name) for e in exceptions),
    )


def _parse_exceptions(value: object, where: str) -> tuple[RuleException, ...]:
    """`except:` entries, each `{name: module:qualname, reason: ...}`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RulesError(f"{where} must be a list of {{name, reason}} entries")
    found: dict[str, RuleException] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) != _EXCEPTION_KEYS:
            raise RulesError(f"{where}: every exception takes exactly 'name' and 'reason', got {item!r}")
        text, reason = item["name"], item["reason"]
        if not isinstance(text, str) or not _EXACT_NAME.match(text):
            raise RulesError(
                f"{where}: exception {text!r} must be an exact module:qualname",
                hint="name the value type by the module that defines it; no globs",
            )
        if not isinstance(reason, str) or not reason.strip():
            raise RulesError(f"{where}: exception {text!r} needs a non-empty 'reason'")
        if text in found:
            raise RulesError(f"{where}: exception {text!r} is listed twice")
        module, _, name = text.partition(":")
        found[text] = RuleException(module, name, reason.strip())
    return tuple(found.values())


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
            if target is None and rule.exceptions:
                raise RulesError(f"{source}: rule {rule.id!r}: 'except' is only for deny rules")
            ruleset.rules[rule.id] = rule
            if target is not None:
                target.extend((ImportPattern.parse(text), rule) for text in rule.patterns)
    elif kind == "pickle-allow":
        version = data.get("version", 1)
        if version == 1:
            _add_allow_v1(ruleset, data, source)
        elif version == 2:
            _add_allow_v2(ruleset, data, source)
        else:
            raise RulesError(f"{source}: unknown pickle-allow version {version!r}", hint="use version: 2")
    else:
        raise RulesError(
            f"rules file {path}: unknown kind {kind!r}",
            hint="expected builtin, pickle-deny, pickle-allow or code-deny",
        )
    ruleset.sources.append(source)
    ruleset._exact = None
    ruleset._deny_index = None
    ruleset._glob_index = None
    ruleset._cache.clear()


def _group_reason(group: object, keys: set[str], source: str) -> str:
    if not isinstance(group, dict) or set(group) - keys:
        raise RulesError(f"{source}: allow groups take only {sorted(keys)}")
    reason = group.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise RulesError(f"{source}: every allow group needs a 'reason'")
    return reason.strip()


def _add_allow_v1(ruleset: RuleSet, data: Mapping[str, object], source: str) -> None:
    """Version 1: `module:name` with fnmatch globs; every entry a constructor."""
    groups = data.get("groups") or []
    if not isinstance(groups, list):
        raise RulesError(f"{source}: 'groups' must be a list")
    for group in groups:
        reason = _group_reason(group, _GROUP_KEYS, source)
        assert isinstance(group, dict)
        for text in _as_str_list(group.get("allow"), f"{source}: allow"):
            pattern = ImportPattern.parse(text)
            if pattern.module in ("*", "") or pattern.module.strip("*.") == "":
                raise RulesError(f"{source}: allow entry {text!r} must name a module")
            ruleset.allow.append(AllowEntry(pattern, reason))


def _parse_kind(value: object, where: str) -> AllowKind:
    try:
        return AllowKind(value)
    except ValueError:
        choices = ", ".join(k.value for k in AllowKind)
        raise RulesError(f"{where}: kind must be one of {choices}, not {value!r}") from None


def _parse_calls(value: object, kind: AllowKind, where: str) -> tuple[int, ...]:
    if kind is not AllowKind.CALLS_ARGUMENTS:
        if value is not None:
            raise RulesError(f"{where}: 'calls' is only for kind calls-arguments")
        return ()
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)
    ):
        raise RulesError(f"{where}: kind calls-arguments needs 'calls', a list of argument positions")
    return tuple(sorted(set(value)))


def _add_allow_v2(ruleset: RuleSet, data: Mapping[str, object], source: str) -> None:
    """Version 2: exact `module:qualname` names (the defining module, as pickle
    writes it), each with a kind; no globs."""
    groups = data.get("groups") or []
    if not isinstance(groups, list):
        raise RulesError(f"{source}: 'groups' must be a list")
    seen: set[str] = set()
    for group in groups:
        reason = _group_reason(group, _GROUP_KEYS_V2, source)
        assert isinstance(group, dict)
        default = _parse_kind(group.get("kind", "constructor"), f"{source}: group {reason[:40]!r}")
        entries = group.get("allow") or []
        if not isinstance(entries, list):
            raise RulesError(f"{source}: 'allow' must be a list")
        for raw in entries:
            item: dict[str, object] = raw if isinstance(raw, dict) else {"name": raw}
            if set(item) - _ENTRY_KEYS_V2:
                raise RulesError(f"{source}: allow entries take only {sorted(_ENTRY_KEYS_V2)}, got {raw!r}")
            text = item.get("name")
            if not isinstance(text, str) or not _EXACT_NAME.match(text):
                raise RulesError(
                    f"{source}: allow entry {text!r} must be an exact module:qualname",
                    hint="version 2 takes no globs: list each class or function by its defining module",
                )
            if text in seen:
                raise RulesError(f"{source}: allow entry {text!r} is listed twice")
            seen.add(text)
            kind = _parse_kind(item.get("kind", default.value), f"{source}: {text}")
            calls = _parse_calls(item.get("calls"), kind, f"{source}: {text}")
            entry_reason = item.get("reason", reason)
            if not isinstance(entry_reason, str) or not entry_reason.strip():
                raise RulesError(f"{source}: {text}: 'reason' must be a non-empty string")
            module, _, name = text.partition(":")
            pattern = ImportPattern(module=module, name=name, text=text)
            ruleset.allow.append(AllowEntry(pattern, entry_reason.strip(), kind, calls, exact=True))


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
