"""Build hook: compile the opcode walk and the zip directory reader with mypyc.

Everything else is in pyproject.toml. The compiled modules are the same
source as the pure-Python ones, only faster (the opcode walk about 4x);
set MODELTRUST_PURE_PYTHON=1, or lack a C compiler, to install without them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import find_packages, setup

RULE_PACKAGES = [
    "modeltrust.rules" + "".join("." + part for part in path.relative_to("rules").parts)
    for path in [Path("rules"), *sorted(p for p in Path("rules").rglob("*") if p.is_dir())]
]

COMPILED = [
    "src/modeltrust/scanners/pickle.py",
    "src/modeltrust/sources/ziparchive.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("MODELTRUST_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    # Runtime dependencies are not in the isolated build environment; their
    # types are not needed to compile these modules. Any type-check failure in
    # a user's environment means a pure-Python install, not a failed one.
    flags = ["--ignore-missing-imports", "--no-warn-unused-ignores"]
    try:
        extensions = mypycify([*flags, *COMPILED], opt_level="3", debug_level="0")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - mypycify exits on type errors
        print(f"modeltrust: not compiling ({exc}); installing pure Python", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no compiler: fall back to pure Python
    return list(extensions)


setup(
    ext_modules=ext_modules(),
    # Every package under src/ (new ones must never be left out of a wheel),
    # plus the rule folders.
    packages=[*find_packages("src"), *RULE_PACKAGES],
    # The rules live at the top of the repository and ship inside the package.
    package_dir={"": "src", "modeltrust.rules": "rules"},
    # Rules (YAML) and schemas (JSON) in any package.
    package_data={"": ["*.yaml", "*.json"]},
)
