"""Chat templates judged deny-by-default: the templates of popular models pass,
injection is critical, computed keys and unknown constructs are high, a
template that cannot be parsed is high. Payloads are proven with jinja2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from . import chat_templates
from .conftest import MARKER, rule_ids, scan_bytes

SMALL_BENIGN = [
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}",
    "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.role == 'system' -%}"
    "{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{ bos_token }}",
    "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Roles must alternate') }}{% endif %}"
    "{{ messages | map(attribute='content') | join('\n') }}",
]
SMALL_CRITICAL = [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('id') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ joiner['__init__'] }}",
    "{% set x = namespace() %}{{ x.__init__.__globals__ }}",
    "{{ messages | map(attribute='__class__') | list }}",
    "{% for f in range(1).gi_frame %}{% endfor %}",
]
SMALL_HIGH = [
    "{{ ()|attr('__cla' ~ 'ss__') }}",  # computed name: also no dunder constant reaches the key
    "{% set k = 'con' ~ 'tent' %}{{ messages[0][k] }}",
    "{{ messages[0]._private }}",
    "{{ messages|shell }}",
    "{{ messages is callable_thing }}",
    "{{ load_file('x') }}",
    "{{ messages[0].content.format(x=1) }}",
    "{% include 'other.jinja' %}",
    "{% set n = '0' %}{{ messages[n] }}",
    # a dict literal indexed by a computed key is cleared only when nothing walks on from the result
    "{% set m = {'a': 1} %}{{ m[k][k2] }}",
    "{% set m = {'a': 1} %}{{ m[k].x }}",
    "{% set m = {'a': 1} %}{{ m[k]('x') }}",
    "{% set m = {'a': 1} %}{% set y = m[k] %}{{ y.z }}",
    "{% set m = {'a': 1} %}{% for i in m[k] %}{{ i }}{% endfor %}",
    "{% set m = {'a': 1} %}{% set m = messages %}{{ m[k] }}",
    "{% set m = {'a': 1} %}{% set r = m[k] %}{{ r.x }}",
    "{% set m = {'a': 1} %}{{ (m[k] or x).y }}",
    "{% macro f(a) %}{{ a.b }}{% endmacro %}{% set m = {'a': 1} %}{{ f(m[k]) }}",
]
TABLE_LOOKUPS_ONLY_PRINTED = [
    "{% set m = {'a': 1} %}{{ m[k] }}{% if m[k] is defined %}x{% endif %}{{ 'a' + m[k] }}",
    "{% set m = {'a': 1} %}{% set r = m[k] %}{{ r }}{% if r == 'x' %}{% endif %}",
    "{% set r = {'user': 'U', 'assistant': 'A'}[message['role']] %}{{ r ~ ':' }}",
    "{% set m = {'a': 1} %}{{ m[k] or 'none' }}",
]


def _tokenizer_config(template: str) -> bytes:
    return json.dumps({"chat_template": template, "bos_token": "<s>"}).encode()


@pytest.mark.parametrize("name", sorted(chat_templates.BENIGN))
@pytest.mark.parametrize("file_name", ["tokenizer_config.json", "chat_template.jinja"])
def test_popular_model_templates_are_clean(tmp_path: Path, name: str, file_name: str) -> None:
    template = chat_templates.BENIGN[name]
    data = _tokenizer_config(template) if file_name.endswith(".json") else template.encode()
    loud = [f for f in scan_bytes(tmp_path, data, file_name).findings if f.severity >= Severity.LOW]
    assert not loud, loud


@pytest.mark.parametrize("template", SMALL_BENIGN)
def test_small_prompt_formats_are_clean(tmp_path: Path, template: str) -> None:
    assert not scan_bytes(tmp_path, _tokenizer_config(template), "tokenizer_config.json").findings


@pytest.mark.parametrize("template", SMALL_CRITICAL + list(chat_templates.MALICIOUS.values())[:2])
def test_injection_is_critical(tmp_path: Path, template: str) -> None:
    report = scan_bytes(tmp_path, _tokenizer_config(template), "tokenizer_config.json")
    assert report.max_severity is Severity.CRITICAL and "template-injection" in rule_ids(report)


@pytest.mark.parametrize("template", SMALL_HIGH + list(chat_templates.MALICIOUS.values())[2:])
def test_constructs_real_templates_do_not_use_are_high(tmp_path: Path, template: str) -> None:
    report = scan_bytes(tmp_path, _tokenizer_config(template), "tokenizer_config.json")
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH
    assert rule_ids(report) & {"template-dynamic-access", "template-injection"}


@pytest.mark.parametrize(
    "template",
    ["{% for x in %}", "{% do messages.append(1) %}", "{% generation %}unclosed", "{{ x }}{% endfor %}"],
)
def test_unparsable_or_unknown_tag_is_high(tmp_path: Path, template: str) -> None:
    report = scan_bytes(tmp_path, _tokenizer_config(template), "tokenizer_config.json")
    assert [(f.rule_id, f.severity) for f in report.findings] == [("template-malformed", Severity.HIGH)]


def test_jinja_file_beside_a_tokenizer_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "additional_chat_templates").mkdir(parents=True)
    (folder / "tokenizer_config.json").write_text('{"bos_token": "<s>"}')
    (folder / "chat_template.jinja").write_text(chat_templates.QWEN_3)
    payload = chat_templates.MALICIOUS["computed-keys"]
    (folder / "additional_chat_templates" / "tool_use.jinja").write_text("{" + payload)  # starts like JSON
    from .conftest import scan_paths

    report = scan_paths(folder)
    flagged = {Path(f.location.path).name for f in report.findings if f.severity >= Severity.HIGH}
    assert flagged == {"tool_use.jinja"}


def test_template_that_is_not_utf8_is_high(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, b"{{ messages }}\xff\xfe", "chat_template.jinja")
    assert ("template-malformed", Severity.HIGH) in {(f.rule_id, f.severity) for f in report.findings}


RENDER = """
import jinja2, sys
template = open(sys.argv[1], encoding="utf-8").read()
try:
    jinja2.Environment().from_string(template).render(messages=[{"role": "user", "content": "hi"}])
except Exception:
    pass
"""


@pytest.mark.parametrize("name", sorted(chat_templates.MALICIOUS))
def test_payload_runs_in_a_non_sandboxed_renderer(tmp_path: Path, name: str) -> None:
    """As llama-cpp-python rendered templates before GHSA-56xg-wfcc-g829."""
    (tmp_path / "t.jinja").write_text(chat_templates.MALICIOUS[name])
    subprocess.run([sys.executable, "-c", RENDER, "t.jinja"], cwd=tmp_path, timeout=60, check=False)
    assert (tmp_path / MARKER).exists()


@pytest.mark.parametrize("technique", sorted(chat_templates.ATTRIBUTE_PATH_PAYLOADS))
def test_attribute_paths_named_to_filters_are_critical(tmp_path: Path, technique: str) -> None:
    template = chat_templates.ATTRIBUTE_PATH_PAYLOADS[technique]
    report = scan_bytes(tmp_path, template.encode(), "chat_template.jinja")
    assert report.max_severity is Severity.CRITICAL, report.findings
    (tmp_path / "t.jinja").write_text(template)
    subprocess.run([sys.executable, "-c", RENDER, "t.jinja"], cwd=tmp_path, timeout=60, check=False)
    assert (tmp_path / MARKER).exists()  # the payload runs in a non-sandboxed renderer


@pytest.mark.parametrize("template", TABLE_LOOKUPS_ONLY_PRINTED)
def test_dict_literal_lookup_only_printed_is_clean(tmp_path: Path, template: str) -> None:
    report = scan_bytes(tmp_path, template.encode(), "chat_template.jinja")
    assert report.max_severity is None or report.max_severity < Severity.MEDIUM, report.findings
