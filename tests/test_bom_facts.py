"""Facts the BOM takes from files, read as data only: the model card (front
matter and sections), config.json, and parameter counts from safetensors and
GGUF headers, checked against the real libraries; hostile input yields missing
facts, never a crash, a hang or code that runs."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltrust.bom.tensors import gguf_facts, safetensors_facts, tensor_facts
from modeltrust.modelcard import parse_card, read_card, read_config

from .conftest import FIXTURES, MARKER

CARD = (FIXTURES / "bom" / "tiny-finetune" / "README.md").read_text()


def test_card_front_matter_and_sections() -> None:
    card = parse_card(CARD)
    assert card.licenses == ("mit",)
    assert card.base_models == ("acme/tiny-base",)
    assert card.base_model_relation == "finetune"
    assert card.datasets == ("acme/tiny-data", "squad")
    assert card.pipeline_tag == "text-classification"
    assert card.name == "tiny-finetune" and card.title == "tiny-finetune"
    assert [(r.metric, r.value, r.split) for r in card.eval_results] == [
        ("accuracy", "0.91", "test"),
        ("f1", "0.88", "test"),
    ]
    assert card.limitations == ("Trained on one hundred sentences: it is not accurate on anything real.",)
    assert card.ethical_considerations == (
        "The training sentences were written by one person and carry their biases.",
    )
    assert card.use_cases == ("Classifying short English sentences in tests.",)
    assert not card.dataset_keys


def test_a_heading_in_a_code_block_is_not_a_section() -> None:
    card = parse_card("# t\n\n```\n# Limitations\nnot a section\n```\n\n## Usage\nrun it\n")
    assert card.limitations == ()


def test_dataset_card_is_recognised() -> None:
    card = parse_card((FIXTURES / "bom" / "tiny-data" / "README.md").read_text())
    assert card.dataset_keys and card.licenses == ("cc-by-4.0",) and card.name == "Tiny Data"
    assert card.source_datasets == ("original",)


@pytest.mark.parametrize(
    "front",
    [
        "!!python/object/apply:os.system ['touch modeltrust-pwned']",  # a tag that would run code
        "license: !!python/name:os.system ''",
        "- just\n- a list",
        "license: [unclosed",
        "a: &a [*a, *a]",  # a self-referencing alias
        "license: {nested: {deeper: [1, 2, 3]}}",
        "datasets: 42\nbase_model: [null, true, {x: 1}, org/base]",
    ],
)
def test_hostile_front_matter_gives_facts_or_nothing(
    front: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    card = parse_card(f"---\n{front}\n---\n# title\n")
    assert not (tmp_path / MARKER).exists()
    assert card.title == "title"
    for value in (card.licenses, card.datasets, card.base_models, card.tags):
        assert isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    if "base_model" in front:
        assert card.base_models == ("org/base",)


def test_billion_laughs_stays_small() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("tags: *a8")
    card = parse_card("---\n" + "\n".join(lines) + "\n---\n")
    assert card.tags == ()  # nested lists are not names; aliases are never expanded into text


def test_oversized_card_and_config_are_skipped(tmp_path: Path) -> None:
    big = tmp_path / "README.md"
    big.write_text("---\nlicense: mit\n---\n" + "x" * (2 << 20))
    assert read_card(big) is None
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "x", "pad": "y" * (2 << 20)}))
    assert read_config(config) is None
    config.write_text("[1, 2]")
    assert read_config(config) is None
    config.write_text(json.dumps({"model_type": "bert", "_name_or_path": "/home/me/ckpt"}))
    facts = read_config(config)
    assert facts is not None and facts.model_type == "bert" and facts.base_model_hint == ""


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_parses_as_a_card(text: str) -> None:
    card = parse_card(text)
    assert isinstance(card.description, str)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_garbled_headers_give_no_facts_or_sane_ones(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, parse in (("x.safetensors", safetensors_facts), ("x.gguf", gguf_facts)):
            path = Path(tmp) / name
            path.write_bytes(data)
            facts = parse(path)
            assert facts is None or facts[0] >= 0


@pytest.mark.parametrize("name", ["chatml.gguf", "llama3_template.gguf"])
def test_gguf_counts_match_the_gguf_library(name: str) -> None:
    gguf = pytest.importorskip("gguf", reason="the gguf package (fixtures extra) is the reference")
    path = FIXTURES / "benign" / name
    reader = gguf.GGUFReader(str(path))
    expected = sum(int(t.n_elements) for t in reader.tensors)
    dtypes = {t.tensor_type.name for t in reader.tensors}
    assert gguf_facts(path) == (expected, dtypes)


def test_gguf_bombs_give_no_facts() -> None:
    for name in ("tensor_count_bomb.gguf", "string_length_bomb.gguf", "too_many_dims.gguf"):
        assert gguf_facts(FIXTURES / "malicious" / name) is None


def test_safetensors_counts_match_the_library() -> None:
    safetensors = pytest.importorskip("safetensors", reason="the safetensors package is the reference")
    path = FIXTURES / "benign" / "model.safetensors"
    expected, dtypes = 0, set()
    with safetensors.safe_open(str(path), "np") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            sliced = handle.get_slice(key)
            count = 1
            for dim in sliced.get_shape():
                count *= dim
            expected += count
            dtypes.add(sliced.get_dtype())
    assert safetensors_facts(path) == (expected, dtypes)


def _shard(path: Path, elements: int) -> None:
    header = json.dumps(
        {"w": {"dtype": "BF16", "shape": [elements], "data_offsets": [0, 2 * elements]}}
    ).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(2 * elements))


def test_shards_of_one_checkpoint_are_summed_once(tmp_path: Path) -> None:
    _shard(tmp_path / "model-00001-of-00002.safetensors", 10)
    _shard(tmp_path / "model-00002-of-00002.safetensors", 5)
    _shard(tmp_path / "consolidated.safetensors", 15)  # the same weights again (Mistral ships both)
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    files = {p.name: p for p in tmp_path.iterdir()}
    facts = tensor_facts(files)
    assert facts is not None
    assert facts.parameters == 15 and facts.dtypes == ("BF16",)
    assert facts.files == ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def test_sub_models_in_folders_are_added(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "vae").mkdir()
    _shard(tmp_path / "unet" / "diffusion_pytorch_model.safetensors", 7)
    _shard(tmp_path / "vae" / "diffusion_pytorch_model.safetensors", 3)
    files = {p.relative_to(tmp_path).as_posix(): p for p in tmp_path.rglob("*.safetensors")}
    facts = tensor_facts(files)
    assert facts is not None and facts.parameters == 10 and len(facts.files) == 2
