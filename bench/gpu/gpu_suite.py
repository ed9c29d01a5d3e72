"""The GPU check: every method on SD1.5 (512 px) and SDXL (1024 px), bf16, plus the peer.

Per (model, method) it records images/s (steady: median of steps 3..N), model-FLOPs
utilisation, peak GPU memory, the step-0 sampling time, the latent-cache time, and for SD1.5
the peer scripts on the same model (bench/peer_compare.py's runner) for the ratio.

FLOPs are counted, not estimated: torch.utils.flop_counter.FlopCounterMode wraps the engine's
first training step (forward and backward of exactly what the engine runs: UNet with the
adapters, the text encoder where TI/pivotal trains it), which counts matmul, convolution and
attention FLOPs from the real shapes. MFU = counted FLOPs per image x images/s / peak, with
the H200's dense bf16 peak of 989 TFLOP/s (NVIDIA's figure; ~790 measured on an 8192^3 bf16
matmul on these machines).

    python bench/gpu/gpu_suite.py --out DIR            # on the GPU (see run.sh)
    python bench/gpu/gpu_suite.py --out DIR --smoke    # CPU, tiny models, seconds
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from worker.training.callbacks import TrainingCallbacks  # noqa: E402
from worker.training.types import Progress, TrainingExample  # noqa: E402

METHODS = ["lora", "dora", "textual_inversion", "pivotal"]
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}  # dense bf16
SHAPES = {"sd15": {"resolution": 512, "batch": 16}, "sdxl": {"resolution": 1024, "batch": 4}}


class PhaseClock(TrainingCallbacks):
    """Records throughput per step and how long each phase lasted."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.phases: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def on_phase(self, phase: str, done: int | None = None, total: int | None = None) -> None:
        now = time.perf_counter()
        if self._current is not None and self._current[0] != phase:
            name, started = self._current
            self.phases[name] = self.phases.get(name, 0.0) + now - started
        if self._current is None or self._current[0] != phase:
            self._current = (phase, now)

    def on_progress(self, progress: Progress) -> None:
        self.rates.append(progress.images_per_second)

    def finish(self) -> None:
        self.on_phase("done")


def build_sdxl_random(path: Path) -> Path:
    """A randomly initialised, full-size SDXL-architecture model folder (built on the GPU)."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from worker.training.tiny_models import _scheduler_kwargs, write_tiny_tokenizer

    if (path / "model_index.json").exists():
        return path
    write_tiny_tokenizer(path / "tokenizer")
    write_tiny_tokenizer(path / "tokenizer_2")
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    ids = {"bos_token_id": len(tokenizer) - 2, "eos_token_id": len(tokenizer) - 1}
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        unet = UNet2DConditionModel(
            sample_size=128,
            cross_attention_dim=2048,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
            layers_per_block=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=1024,
            scaling_factor=0.13025,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                           num_hidden_layers=12, num_attention_heads=12,
                           max_position_embeddings=77, hidden_act="quick_gelu", **ids)
        )  # fmt: skip
        text_encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120,
                           num_hidden_layers=32, num_attention_heads=20, projection_dim=1280,
                           max_position_embeddings=77, hidden_act="gelu", **ids)
        )  # fmt: skip
    StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=CLIPTokenizer.from_pretrained(path / "tokenizer_2"),
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_scheduler_kwargs()),
    ).save_pretrained(path)
    return path


def _examples(data: Path) -> list[TrainingExample]:
    rows = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines() if line]
    return [TrainingExample(data / row["file_name"], row["text"]) for row in rows]


def run_method(model: Path, arch: str, method: str, args: argparse.Namespace) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    from worker.training.config import parse_config
    from worker.training.engine import TrainingRun
    from worker.training.lora.train import LoraMethod
    from worker.training.pivotal.train import PivotalMethod
    from worker.training.textual_inversion.train import TextualInversionMethod

    shape = args.shapes[arch]
    config = parse_config({
        "type": method, "architecture": arch, "resolution": shape["resolution"],
        "train_batch_size": shape["batch"], "max_train_steps": args.steps,
        "mixed_precision": "bf16", "save_every_n_steps": None, "validate_every_n_steps": None,
        "validation_prompts": ["a photo of sks gnome"], "num_validation_images": 1,
        "validation_inference_steps": args.sampling_steps,
    })  # fmt: skip
    methods = {"lora": LoraMethod, "dora": LoraMethod, "pivotal": PivotalMethod,
               "textual_inversion": TextualInversionMethod}  # fmt: skip
    clock = PhaseClock()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    flops: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        data = args.data[shape["resolution"]]
        run = TrainingRun(methods[method](config), _examples(data), clock, str(model), Path(out))
        step = run._train_step

        def counted_first_step(number: int) -> Any:
            if number != 1:
                return step(number)
            with FlopCounterMode(display=False) as counter:
                result = step(number)
            flops.append(float(counter.get_total_flops()))
            return result

        run._train_step = counted_first_step  # type: ignore[method-assign]
        started = time.perf_counter()
        run.run()
        clock.finish()
        total = time.perf_counter() - started
    images_per_s = statistics.median(clock.rates[2:] or clock.rates[1:] or clock.rates)
    per_image = flops[0] / shape["batch"]
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in args.device), 0.0)
    row = {
        "model": arch, "method": method, "resolution": shape["resolution"],
        "batch": shape["batch"], "steps": args.steps, "images_per_s": images_per_s,
        "train_flops_per_image": per_image,
        "mfu_percent": 100 * per_image * images_per_s / (peak * 1e12) if peak else None,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30
        if torch.cuda.is_available() else None,
        "latent_cache_s": clock.phases.get("caching_latents", 0.0),
        "step0_sampling_s": clock.phases.get("rendering_step0"),
        "final_validation_s": clock.phases.get("validating"),
        "load_s": clock.phases.get("loading_model"),
        "wall_s": total,
    }  # fmt: skip
    del run
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return row


def run_peer(model: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """diffusers' scripts on the SD1.5 model, same resolution/batch/steps, for the ratio."""
    import peer_compare

    shape = args.shapes["sd15"]
    peer_args = argparse.Namespace(
        model=model, data=args.data[shape["resolution"]], resolution=shape["resolution"],
        batch=shape["batch"], steps=args.steps,
    )  # fmt: skip
    peer_compare.prepare_ti_folder(peer_args.data)
    cuda = torch.cuda.is_available()
    rows = []
    for method in args.peer_methods:
        try:
            row = {"method": method, **peer_compare.run_peer(method, peer_args, cuda)}
        except RuntimeError as error:  # e.g. a package the peer needs: keep the engine's rows
            print(f"peer {method} failed: {error}", flush=True)
            continue
        rows.append({**row, "images_per_s": shape["batch"] / row["step_s"]})
    return rows


def report(figures: dict[str, Any]) -> str:
    lines = [f"device={figures['device']} steps={figures['steps']} bf16={figures['bf16']}"]
    lines.append(f"{'model':5s} {'method':18s} {'res':>5s} {'batch':>5s} {'img/s':>8s} "
                 f"{'MFU %':>6s} {'GPU GB':>7s} {'cache s':>8s} {'step0 s':>8s} {'vs peer':>8s}")
    peer = {row["method"]: row["images_per_s"] for row in figures["peer"]}
    for row in figures["engine"]:
        mfu = f"{row['mfu_percent']:6.1f}" if row["mfu_percent"] is not None else "     -"
        gpu = f"{row['peak_gpu_gb']:7.2f}" if row["peak_gpu_gb"] is not None else "      -"
        base = peer.get(PEER_FOR[row["method"]]) if row["model"] == "sd15" else None
        ratio = f"{row['images_per_s'] / base:7.2f}x" if base else "       -"
        lines.append(
            f"{row['model']:5s} {row['method']:18s} {row['resolution']:5d} {row['batch']:5d} "
            f"{row['images_per_s']:8.2f} {mfu} {gpu} {row['latent_cache_s']:8.2f} "
            f"{row['step0_sampling_s'] or 0:8.2f} {ratio}"
        )
    for row in figures["peer"]:
        gpu = f"{row['gpu_gb']:.2f}" if row.get("gpu_gb") is not None else "-"
        lines.append(f"peer  {row['method']:18s} {row['images_per_s']:8.2f} img/s "
                     f"wall {row['wall_s']:.1f} s  GPU {gpu} GB")
    return "\n".join(lines)


PEER_FOR = {"lora": "lora", "dora": "lora", "pivotal": "lora",
            "textual_inversion": "textual_inversion"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, 2 steps")
    parser.add_argument("--steps", type=int, default=0, help="0 = 30 (2 with --smoke)")
    parser.add_argument("--models", default="sd15,sdxl")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "atelier-gpu")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        raise SystemExit("no CUDA device: run with --smoke on a CPU")
    args.device = torch.cuda.get_device_name() if cuda else "CPU"
    args.steps = args.steps or (2 if args.smoke else 30)
    args.sampling_steps = 1 if args.smoke else 20
    smoke_shape = {"resolution": 32, "batch": 2}
    args.shapes = {k: smoke_shape for k in SHAPES} if args.smoke else SHAPES
    args.peer_methods = ["lora"] if args.smoke else ["lora", "textual_inversion"]

    import peer_compare

    models: dict[str, Path] = {}
    for arch in args.models.split(","):
        path = args.work / f"{arch}-{'tiny' if args.smoke else 'full'}"
        if arch == "sd15":
            size = "tiny" if args.smoke else "sd15"
            peer_compare.make_model(path, size)
        elif args.smoke:
            from worker.training.tiny_models import build_tiny_model

            build_tiny_model(path, "sdxl")
        else:
            build_sdxl_random(path)
        models[arch] = path
    args.data = {}
    for resolution in {shape["resolution"] for shape in args.shapes.values()}:
        folder = args.work / f"data-{resolution}"
        peer_compare.make_data(folder, 8, resolution)
        args.data[resolution] = folder

    figures: dict[str, Any] = {"device": args.device, "steps": args.steps, "bf16": cuda,
                               "engine": [], "peer": []}  # fmt: skip
    for arch, path in models.items():
        for method in args.methods.split(","):
            figures["engine"].append(run_method(path, arch, method, args))
            print(json.dumps(figures["engine"][-1]), flush=True)
            (args.out / "gpu_figures.json").write_text(json.dumps(figures, indent=2))
    if "sd15" in models:
        figures["peer"] = run_peer(models["sd15"], args)
    (args.out / "gpu_figures.json").write_text(json.dumps(figures, indent=2))
    text = report(figures)
    (args.out / "gpu_report.txt").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
