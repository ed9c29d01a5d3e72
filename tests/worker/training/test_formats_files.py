"""Kohya-complete metadata on every file, plain LoRA merged the same by every client, and the
one-file pivotal bundle read as A1111 does."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors import safe_open
from safetensors.torch import load_file

from tests.worker.training.client_formulas import CLIENTS
from worker.training.config import parse_config
from worker.training.engine import TrainingRun
from worker.training.export_formats import kohya_name, kohya_prefixes
from worker.training.lora.train import LoraMethod
from worker.training.lora_adapters import ADAPTER, lora_layers
from worker.training.pivotal.train import PivotalMethod
from worker.training.textual_inversion.train import TextualInversionMethod
from worker.training.types import TrainingExample

METHODS = {"lora": LoraMethod, "dora": LoraMethod, "pivotal": PivotalMethod}
METHODS["textual_inversion"] = TextualInversionMethod
CAPTIONS = ["red square, studio", "red square, outdoors", "red square, studio", None]
OUTPUT_NAME = "Red squares v1"  # the job's name, as the worker passes it
TRIGGERS = {"lora": "sks", "dora": "sks", "pivotal": "<red>", "textual_inversion": "<red>"}


@pytest.fixture(scope="module")
def tagged_dataset(toy_dataset: list[TrainingExample]) -> list[TrainingExample]:
    return [TrainingExample(e.image_path, c) for e, c in zip(toy_dataset, CAPTIONS, strict=True)]


@pytest.fixture(scope="module", params=[(m, a) for m in METHODS for a in ("sd15", "sdxl")])
def trained(
    request: pytest.FixtureRequest,
    tiny_models: dict[str, Path],
    tagged_dataset: list[TrainingExample],
    make_config: Any,
    recording_callbacks: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str, TrainingRun, list[Path]]:
    method, arch = request.param
    overrides = {"max_train_steps": 2, "save_every_n_steps": 2, "validation_prompts": []}
    config = parse_config(make_config(method, arch, **overrides))
    out = tmp_path_factory.mktemp(f"{method}-{arch}")
    method_impl, source = METHODS[method](config), str(tiny_models[arch])
    run = TrainingRun(method_impl, tagged_dataset, recording_callbacks(), source, out, OUTPUT_NAME)
    return method, arch, run, run.run().files


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    return load_file(str(path)), metadata


def test_metadata_is_complete_and_true(trained: tuple[str, str, TrainingRun, list[Path]]) -> None:
    method, arch, run, files = trained
    family = "stable-diffusion-xl-v1-base" if arch == "sdxl" else "stable-diffusion-v1"
    for path in files:
        _, meta = read(path)
        adapter = "textual-inversion" if path.name == "embedding.safetensors" else "lora"
        assert meta["modelspec.architecture"] == f"{family}/{adapter}"
        assert meta["modelspec.trigger_phrase"] == TRIGGERS[method]
        size = run.config.resolution
        assert meta["modelspec.resolution"] == f"{size}x{size}"
        assert meta["modelspec.title"] == OUTPUT_NAME
        assert meta["modelspec.implementation"]
        assert datetime.fromisoformat(meta["modelspec.date"]).year >= 2024
        if adapter == "textual-inversion":
            continue
        assert meta["ss_output_name"] == OUTPUT_NAME
        assert meta["ss_sd_model_name"] == arch  # the base model folder's name
        assert meta["ss_mixed_precision"] == "no"  # CPU runs compute in fp32
        assert meta["ss_num_train_images"] == "4" and meta["ss_steps"] == "2"
        tags = json.loads(meta["ss_tag_frequency"])
        assert tags == {"atelier": {"red square": 3, "studio": 2, "outdoors": 1}}
        assert meta["ss_training_comment"].startswith(f"trained with Atelier ({method})")
        # sshs_model_hash: sha256 of the tensor bytes after the header, as A1111 checks it.
        data = path.read_bytes()
        body = data[8 + int.from_bytes(data[:8], "little") :]
        assert meta["sshs_model_hash"] == hashlib.sha256(body).hexdigest()
        assert len(meta["sshs_legacy_hash"]) == 8
        if method == "dora":
            assert meta["ss_network_alpha"] == "4.0"  # alpha/rank folded into lora_up
            assert json.loads(meta["ss_network_args"])["dora_wd"] == "True"
        if method == "pivotal":
            assert meta["ss_embedding_token"] == "<red>"
            assert meta["ss_embedding_lr"] == "0.05"
            assert "<red>" in meta["ss_training_comment"]


def test_plain_lora_merges_to_the_trained_weight_in_every_client(
    trained: tuple[str, str, TrainingRun, list[Path]],
) -> None:
    """The LoRA of a LoRA or pivotal run, through each client's formula (client_formulas.py):
    the trained layer's weight, to fp16 rounding of the stored up/down."""
    method, _, run, files = trained
    if method not in ("lora", "pivotal"):
        pytest.skip("no plain LoRA in this method's files")
    state = load_file(str(next(p for p in files if p.name == "lora.safetensors")))
    parts = run.parts
    checked, moved = 0, 0.0
    for (prefix, _), module in zip(kohya_prefixes(parts.architecture),
                                   [parts.unet, *parts.text_encoders], strict=True):
        for path, layer in lora_layers(module):
            name = kohya_name(prefix, path)
            base = layer.base_layer.weight.detach().float()
            up, down = layer.lora_B[ADAPTER].weight, layer.lora_A[ADAPTER].weight
            delta = (up.flatten(1) @ down.flatten(1)).reshape(base.shape).detach()
            expected = base + layer.scaling[ADAPTER] * delta
            file_up = state[f"{name}.lora_up.weight"].float()
            file_down = state[f"{name}.lora_down.weight"].float()
            alpha = float(state[f"{name}.alpha"])
            bound = 2e-3 * (expected - base).abs().max().item() + 1e-7
            for client, merge in CLIENTS.items():
                err = (merge(base, file_up, file_down, alpha, None) - expected).abs().max().item()
                assert err <= bound, f"{client} {name}: {err} > {bound}"
            moved = max(moved, (expected - base).abs().max().item())
            checked += 1
    assert checked and moved > 0, (checked, moved)


def a1111_bundle_embeddings(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | dict]:
    """A1111 `extensions-builtin/Lora/networks.py` `load_network` (bundle_emb keys: partition
    at the first '.', then the embedding name up to the next '.', `string_to_param.*` kept
    as one table; re-read through the code search in copies of that file) then
    `modules/textual_inversion/textual_inversion.py` `create_embedding_from_data`."""
    bundles: dict[str, dict[str, Any]] = {}
    for key, weight in state.items():
        head, _, rest = key.partition(".")
        if head != "bundle_emb":
            continue
        emb_name, vec_name = rest.split(".", 1)
        entry = bundles.setdefault(emb_name, {})
        if vec_name.split(".")[0] == "string_to_param":
            _, inner = vec_name.split(".", 1)
            entry["string_to_param"] = {inner: weight}
        else:
            entry[vec_name] = weight
    vectors: dict[str, torch.Tensor | dict] = {}
    for name, data in bundles.items():
        if "string_to_param" in data:
            params = data["string_to_param"]
            assert len(params) == 1, "embedding file has multiple terms in it"
            vectors[name] = next(iter(params.values())).float()
        elif "clip_g" in data and "clip_l" in data:
            vectors[name] = {k: v.float() for k, v in data.items()}
        else:
            raise AssertionError(f"A1111 cannot read bundled embedding {name}: {list(data)}")
    return vectors


def test_pivotal_bundle_loads_its_token_as_a1111_reads_it(
    trained: tuple[str, str, TrainingRun, list[Path]], tiny_models: dict[str, Path]
) -> None:
    method, arch, run, files = trained
    if method != "pivotal":
        pytest.skip("only pivotal runs write a bundle")
    by_name = {f.name: f for f in files}
    bundle, _ = read(by_name["lora_with_embedding.safetensors"])
    lora, _ = read(by_name["lora.safetensors"])
    embedding, _ = read(by_name["embedding.safetensors"])

    # The LoRA part is the LoRA file, tensor for tensor.
    lora_part = {k: v for k, v in bundle.items() if not k.startswith("bundle_emb.")}
    assert lora_part.keys() == lora.keys()
    assert all(torch.equal(lora_part[k], lora[k]) for k in lora)

    embeddings = a1111_bundle_embeddings(bundle)
    assert list(embeddings) == ["<red>"]
    trained_vectors = [v.detach().cpu() for v in run.method.token.vectors()]
    found = embeddings["<red>"]
    if arch == "sdxl":
        assert isinstance(found, dict)
        tables = [found["clip_l"], found["clip_g"]]
        assert torch.equal(tables[0], embedding["clip_l"])
    else:
        assert isinstance(found, torch.Tensor)
        tables = [found]
        assert torch.equal(found, embedding["emb_params"])
    assert all(torch.equal(a, b) for a, b in zip(tables, trained_vectors, strict=True))
    assert tables[0].shape[0] == 2  # num_vectors

    # The token then works in a fresh pipeline: its rows are the bundled vectors.
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    extra = {} if arch == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(str(tiny_models[arch]), **extra)
    pairs = [(pipe.text_encoder, pipe.tokenizer)]
    if arch == "sdxl":
        pairs.append((pipe.text_encoder_2, pipe.tokenizer_2))
    for table, (encoder, tokenizer) in zip(tables, pairs, strict=True):
        pipe.load_textual_inversion(table, token="<red>", text_encoder=encoder, tokenizer=tokenizer)
        ids = tokenizer.convert_tokens_to_ids(["<red>", "<red>_1"])
        rows = encoder.get_input_embeddings().weight[ids].detach()
        assert torch.equal(rows, table)


def test_pivotal_token_with_a_dot_gets_no_bundle(
    tiny_models: dict[str, Path],
    tagged_dataset: list[TrainingExample],
    make_config: Any,
    recording_callbacks: Any,
    tmp_path: Path,
) -> None:
    """A1111 cuts bundle keys at '.', so such a token keeps only the two-file form."""
    overrides = {"max_train_steps": 1, "validation_prompts": [], "placeholder_token": "<my.cat>"}
    config = parse_config(make_config("pivotal", "sd15", **overrides))
    source = str(tiny_models["sd15"])
    run = TrainingRun(
        PivotalMethod(config), tagged_dataset, recording_callbacks(), source, tmp_path
    )
    files = run.run().files
    assert [f.name for f in files] == ["lora.safetensors", "embedding.safetensors"]
