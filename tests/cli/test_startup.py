"""Each command imports only what it needs: a plain scan never loads signing,
sigstore, the BOM library or the Hub client; `sign` never loads the scanners;
`--version` loads nothing of the scan API. Checked in a fresh interpreter, the
way `modeltrust` starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT
from ..provenance_keys import ec_key_pair

TINY = ROOT / "examples" / "tiny-model"
HEAVY = ("model_signing", "sigstore", "cyclonedx", "huggingface_hub")


def loaded(*args: str, cwd: Path = ROOT) -> tuple[int, set[str]]:
    """Exit code and the modules imported by `modeltrust ARGS`."""
    code = (
        "import json, sys\n"
        "from modeltrust.cli.main import main\n"
        f"sys.argv = ['modeltrust', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    status = exc.code\n"
        "else:\n    status = 0\n"
        "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MODELTRUST_CACHE_DIR": "off", "HOME": str(cwd)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    status, modules = json.loads(done.stderr.strip().splitlines()[-1])
    return int(status or 0), set(modules)


def roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_a_plain_scan_loads_no_signing_bom_or_hub_library() -> None:
    status, modules = loaded("scan", str(TINY))
    assert status == 0
    assert not roots(modules) & set(HEAVY), sorted(roots(modules) & set(HEAVY))
    assert not {m for m in modules if m.endswith(("sign_cmd", "bom_cmd", "attest_cmd", "fleet_cmd"))}


def test_the_checks_see_what_an_option_loads() -> None:
    """The same probe sees the BOM library when --bom asks for it (the test can fail)."""
    status, modules = loaded("scan", str(TINY), "--bom", os.devnull)
    assert status == 0 and "cyclonedx" in roots(modules)


def test_sign_loads_no_scanner(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    key = ec_key_pair(tmp_path / "keys").private
    status, modules = loaded("sign", str(model), "--key", str(key), cwd=tmp_path)
    assert status == 0 and (model / "model.sig").is_file()
    ours = {m for m in modules if m.startswith("modeltrust.")}
    assert not {
        m for m in ours if m.startswith(("modeltrust.scanners", "modeltrust.engine", "modeltrust.bom"))
    }
    assert "modeltrust.config" not in ours and not roots(modules) & {"cyclonedx", "huggingface_hub"}


def test_version_loads_no_scan_code_and_help_no_heavy_library() -> None:
    status, modules = loaded("--version")
    assert status == 0 and "modeltrust.config" not in modules and not roots(modules) & set(HEAVY)
    status, modules = loaded("--help")  # lists every command: their modules, not their libraries
    assert status == 0 and "modeltrust.cli.sign_cmd" in modules and not roots(modules) & set(HEAVY)
