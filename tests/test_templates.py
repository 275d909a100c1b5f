"""Chat templates: injection constructs are flagged, real prompt formats are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import rule_ids, scan_bytes

BENIGN = [
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}",
    "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.role == 'system' -%}"
    "{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{ bos_token }}",
    "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Roles must alternate') }}{% endif %}"
    "{{ messages | map(attribute='content') | join('\n') }}",
]
MALICIOUS = [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('id') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ ()|attr('__cla' ~ 'ss__') }}",
    "{{ joiner['__init__'] }}",
    "{% set x = namespace() %}{{ x.__init__.__globals__ }}",
]


@pytest.mark.parametrize("template", BENIGN)
def test_real_prompt_formats_are_clean(tmp_path: Path, template: str) -> None:
    data = json.dumps({"chat_template": template}).encode()
    assert not scan_bytes(tmp_path, data, "tokenizer_config.json").findings


@pytest.mark.parametrize("template", MALICIOUS)
def test_injection_constructs_are_high(tmp_path: Path, template: str) -> None:
    data = json.dumps({"chat_template": template}).encode()
    assert "template-injection" in rule_ids(scan_bytes(tmp_path, data, "tokenizer_config.json"))


def test_unparsable_template_is_medium(tmp_path: Path) -> None:
    data = json.dumps({"chat_template": "{% for x in %}"}).encode()
    assert rule_ids(scan_bytes(tmp_path, data, "tokenizer_config.json")) == {"template-malformed"}
