"""Training throughput per method, with and without caches, against a plain reference loop.

The model is SD1.5-shaped (the real UNet/VAE/CLIP-L architecture) with random weights, built in
code (no download). CPU: 256 px, fp32. CUDA: 512 px, bf16. The reference is the loop most
scripts start from: fp32, image decoding, VAE and text encoder every step, a `.item()` per step.

    python bench/train_throughput.py --steps 4            # real SD1.5 shape
    python bench/train_throughput.py --tiny --steps 10    # tiny model, seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.training.callbacks import TrainingCallbacks  # noqa: E402
from worker.training.types import Progress, TrainingExample  # noqa: E402

METHODS = ["lora", "dora", "textual_inversion", "pivotal"]
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense bf16


def build_sd15_random(path: Path) -> Path:
    """Save a randomly initialised, full-size SD1.5-architecture model folder."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from worker.training.tiny_models import _scheduler_kwargs, write_tiny_tokenizer

    if (path / "model_index.json").exists():
        return path
    write_tiny_tokenizer(path / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            bos_token_id=len(tokenizer) - 2,
            eos_token_id=len(tokenizer) - 1,
            hidden_act="quick_gelu",
        )
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_scheduler_kwargs()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(path)
    return path


def make_images(folder: Path, count: int, size: int) -> list[TrainingExample]:
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    examples = []
    for i in range(count):
        pixels = torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8)
        path = folder / f"{i}.png"
        Image.fromarray(pixels.numpy()).save(path)
        examples.append(TrainingExample(path, f"a photo number {i}"))
    return examples


class Timer(TrainingCallbacks):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_progress(self, progress: Progress) -> None:
        self.rates.append(progress.images_per_second)


def _peak_memory_gb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _steady_rate(rates: list[float]) -> float:
    return statistics.median(rates[2:] if len(rates) > 3 else rates[1:] or rates)


def run_case(args: argparse.Namespace, method: str, caches: bool) -> dict[str, Any]:
    """One configuration of the Atelier engine."""
    from worker.training.config import parse_config
    from worker.training.run import run_training

    cuda = torch.cuda.is_available()
    config: dict[str, Any] = {
        "type": method,
        "architecture": "sd15",
        "resolution": args.resolution,
        "max_train_steps": args.steps,
        "train_batch_size": args.batch,
        "save_every_n_steps": None,
        "validate_every_n_steps": None,
        "mixed_precision": "bf16" if cuda else "no",
        "cache_vae_latents": caches,
        "cache_text_encoder_outputs": None if caches else False,
    }
    if method == "pivotal":
        config["embedding_train_fraction"] = 0.0 if caches else 1.0
    with tempfile.TemporaryDirectory() as out:
        examples = make_images(Path(out) / "data", args.images, args.resolution)
        timer = Timer()
        started = time.perf_counter()
        run_training(
            parse_config(config),
            examples,
            timer,
            model_source=str(args.model),
            output_dir=Path(out) / "run",
        )
        total = time.perf_counter() - started
    return {
        "images_per_second": _steady_rate(timer.rates),
        "peak_gb": _peak_memory_gb(),
        "wall_s": total,
    }


def reference_loop(args: argparse.Namespace) -> dict[str, Any]:
    """A plain fp32 LoRA loop: decode, VAE, text encoder and UNet every step, no caches."""
    import numpy as np
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pipe = StableDiffusionPipeline.from_pretrained(str(args.model), safety_checker=None)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False).to(device)
    inject_adapter_in_model(
        LoraConfig(r=16, lora_alpha=16, target_modules=["to_q", "to_k", "to_v", "to_out.0"]), unet
    )
    params = [p for n, p in unet.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    with tempfile.TemporaryDirectory() as out:
        examples = make_images(Path(out), args.images, args.resolution)
        times = []
        for step in range(args.steps):
            started = time.perf_counter()
            batch = [examples[(step * args.batch + i) % len(examples)] for i in range(args.batch)]
            pixels = torch.stack(
                [
                    torch.from_numpy(
                        np.asarray(
                            Image.open(e.image_path)
                            .convert("RGB")
                            .resize((args.resolution, args.resolution)),
                            dtype=np.float32,
                        )
                    ).permute(2, 0, 1)
                    / 127.5
                    - 1
                    for e in batch
                ]
            ).to(device)
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            ids = tokenizer(
                [e.caption for e in batch],
                padding="max_length",
                max_length=77,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            embeds = text_encoder(ids)[0]
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (len(batch),), device=device)
            pred = unet(scheduler.add_noise(latents, noise, t), t, embeds).sample
            loss = torch.nn.functional.mse_loss(pred, noise)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss.item()
            times.append(time.perf_counter() - started)
    steady = statistics.median(times[1:] if len(times) > 1 else times)
    return {"images_per_second": args.batch / steady, "peak_gb": _peak_memory_gb()}


def unet_train_flops_per_image(args: argparse.Namespace) -> float:
    """FLOPs of one UNet forward+backward (LoRA) per image, counted by torch."""
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    unet = UNet2DConditionModel.from_pretrained(str(args.model), subfolder="unet").cuda()
    unet.to(torch.bfloat16).requires_grad_(False)
    latent = args.resolution // 8
    x = torch.randn(1, 4, latent, latent, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    cond = torch.randn(1, 77, 768, device="cuda", dtype=torch.bfloat16)
    with FlopCounterMode(display=False) as counter:
        unet(x, torch.tensor([500], device="cuda"), cond).sample.float().mean().backward()
    return float(counter.get_total_flops())


def _subprocess(args: argparse.Namespace, case: str) -> dict[str, Any]:
    """Each case in its own process so peak memory is its own."""
    command = [
        sys.executable,
        __file__,
        "--case",
        case,
        "--model",
        str(args.model),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--resolution",
        str(args.resolution),
        "--images",
        str(args.images),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny random model (seconds)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=0, help="0 = 1 on CPU, 4 on CUDA")
    parser.add_argument("--resolution", type=int, default=0, help="0 = 256 CPU / 512 CUDA")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--model", type=Path, default=None, help="model folder to reuse")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    args.batch = args.batch or (4 if cuda else 1)
    args.resolution = args.resolution or (32 if args.tiny else 512 if cuda else 256)

    if args.case is not None:
        if args.case == "reference":
            print(json.dumps(reference_loop(args)))
        else:
            method, caches = args.case.split(":")
            print(json.dumps(run_case(args, method, caches == "cached")))
        return

    if args.model is None:
        args.model = Path(tempfile.gettempdir()) / (
            "atelier-bench-tiny" if args.tiny else "atelier-bench-sd15"
        )
    if args.tiny:
        from worker.training.tiny_models import build_tiny_model

        build_tiny_model(args.model, "sd15")
    else:
        build_sd15_random(args.model)
    device = torch.cuda.get_device_name() if cuda else "CPU"
    precision = "bf16" if cuda else "fp32"
    print(
        f"device={device} model={'tiny' if args.tiny else 'SD1.5-shaped'} "
        f"res={args.resolution} batch={args.batch} steps={args.steps} engine={precision}"
    )
    reference = _subprocess(args, "reference")
    ref_rate = reference["images_per_second"]
    print(
        f"{'reference (plain fp32 loop)':34s} {ref_rate:8.3f} img/s  "
        f"peak {reference['peak_gb']:6.2f} GB  ratio 1.00"
    )
    flops = unet_train_flops_per_image(args) if cuda else 0.0
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in device), 0.0)
    for method in args.methods.split(","):
        for caches in ("cached", "uncached"):
            result = _subprocess(args, f"{method}:{caches}")
            rate = result["images_per_second"]
            line = (
                f"{method + ' (' + caches + ')':34s} {rate:8.3f} img/s  "
                f"peak {result['peak_gb']:6.2f} GB  ratio {rate / ref_rate:4.2f}"
            )
            if flops and peak:
                line += f"  MFU {100 * flops * rate / (peak * 1e12):5.1f}%"
            print(line, flush=True)


if __name__ == "__main__":
    main()
