#!/usr/bin/env bash
# The steps of action.yml (one file so that they can be run and tested outside
# GitHub: tests/test_action.py runs them in order in a temp workspace).
# Usage: steps.sh locate|install|scan|verdict, with the environment action.yml sets.
set -euo pipefail

ACTION_PATH=${GITHUB_ACTION_PATH:?}
OUTPUT=${GITHUB_OUTPUT:?}

locate() {
    local python_version sources
    python_version=$("${PYTHON:-python3}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    # The environment is keyed on the action's own files: a new commit of the
    # action builds a new one, the same commit reuses the cached one.
    sources=$(cd "$ACTION_PATH" && find pyproject.toml setup.py src rules -type f ! -name '*.pyc' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
    echo "venv=${RUNNER_TEMP:?}/modeltrust-venv" >>"$OUTPUT"
    echo "key=modeltrust-${RUNNER_OS:-Linux}-py${python_version}-${sources}" >>"$OUTPUT"
}

install() {
    if [[ -x "$VENV/bin/modeltrust" ]] && "$VENV/bin/modeltrust" --version >/dev/null 2>&1; then
        echo "modeltrust: using the cached environment in $VENV"
        return
    fi
    echo "modeltrust: installing into $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$ACTION_PATH"
}

# One line of input -> the paths it names: globs are expanded (no match keeps the
# text, so modeltrust reports the missing path); spaces inside a line are kept.
expand_lines() {
    local line
    shopt -s globstar nullglob
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        line="${line%"${line##*[![:space:]]}"}"
        [[ -z "$line" ]] && continue
        if [[ "$line" != *://* && "$line" == *[\*\?\[]* ]]; then
            local matches=()
            local IFS=$'\n'
            # shellcheck disable=SC2206 # globbing wanted, splitting only on newlines
            matches=($line)
            if ((${#matches[@]})); then
                printf '%s\n' "${matches[@]}"
                continue
            fi
        fi
        printf '%s\n' "$line"
    done <<<"$1"
}

scan() {
    local targets=() args=(scan --no-progress) path code
    while IFS= read -r path; do targets+=("$path"); done < <(expand_lines "${TARGETS:-}")
    ((${#targets[@]})) || { echo "error: the targets input names nothing to scan" >&2; exit 2; }
    while IFS= read -r path; do args+=(--rules "$path"); done < <(expand_lines "${RULES:-}")
    [[ -n "${POLICY:-}" ]] && args+=(--policy "$POLICY")
    [[ -n "${FAIL_ON:-}" ]] && args+=(--fail-on "$FAIL_ON")
    [[ -n "${BASELINE:-}" ]] && args+=(--baseline "$BASELINE")
    [[ -n "${SARIF:-}" ]] && args+=(--sarif "$SARIF")
    [[ -n "${BOM:-}" ]] && args+=(--bom "$BOM")
    [[ -n "${ATTEST:-}" ]] && args+=(--attest "$ATTEST" --key "${ATTEST_KEY:?the attest input needs attest-key}")
    [[ -n "${SIGNATURE_KEY:-}" ]] && args+=(--key "$SIGNATURE_KEY")
    args+=(--json-report "${REPORT:?}")
    set +e
    "$VENV/bin/modeltrust" "${args[@]}" -- "${targets[@]}"
    code=$?
    set -e
    echo "exit-code=$code" >>"$OUTPUT"
    echo "report=$([[ -f "$REPORT" ]] && echo "$REPORT")" >>"$OUTPUT"
    echo "sarif=$([[ -n "${SARIF:-}" && -f "$SARIF" ]] && echo "$SARIF")" >>"$OUTPUT"
    echo "bom=$([[ -n "${BOM:-}" && -f "$BOM" ]] && echo "$BOM")" >>"$OUTPUT"
    echo "attestation=$([[ -n "${ATTEST:-}" && -f "$ATTEST" ]] && echo "$ATTEST")" >>"$OUTPUT"
    "$VENV/bin/python" - "$REPORT" "$code" >>"$OUTPUT" <<'PY'
import json, sys

path, code = sys.argv[1], int(sys.argv[2])
try:
    with open(path, encoding="utf-8") as handle:
        verdict = json.load(handle)["verdict"]
except (OSError, ValueError, KeyError):
    verdict = {}
name = "error" if code == 2 or not verdict else ("pass" if verdict["passed"] else "fail")
print(f"verdict={name}")
print(f"max-severity={verdict.get('max_severity') or 'none'}")
print(f"findings={verdict.get('failing_findings', 0)}")
PY
}

verdict() {
    exit "${EXIT_CODE:-2}"
}

"$1"
