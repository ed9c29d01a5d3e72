"""Atelier's engine against diffusers' own example scripts, side by side in one run.

Same random SD1.5-shaped model (built by ../shared/peer/make_model.py), same images
(make_data.py), resolution, batch and steps. Each method runs as: the peer script, then
Atelier (interleaved, so load drift on the shared machine hits both alike):

    lora     train_text_to_image_lora.py  vs  Atelier LoRA defaults
    dora     train_text_to_image_lora.py  vs  Atelier DoRA defaults (more work: no peer DoRA)
    pivotal  train_text_to_image_lora.py  vs  Atelier pivotal defaults (LoRA + embedding)
    textual_inversion  textual_inversion.py  vs  Atelier TI defaults

Equal work: the peer gets Atelier's defaults where it has the option (LoRA rank 16 = alpha on
to_q/to_k/to_v/to_out.0, min-SNR 5, grad clip 1, TI with 4 vectors at lr 5e-3); nothing of
either side is skipped (every optimizer step runs). Atelier's only head start is its design:
latents and (frozen) text outputs are computed once instead of every step.

Timing: every contender runs in its own process. The peer's per-step times are taken by
wrapping it (`--child peer`): tqdm's `update` on its "Steps" bar is timestamped, which the
script calls once per optimizer step (after `optimizer.step()`, whose loss `.item()` already
synchronises). Atelier's come from its progress callback (`Progress.seconds`, push to push).
steady s/step = mean of steps 2..N; wall = process launch to the last step's end (imports,
model loading, caching all included); peak RSS from wait4 of that process.

    python bench/peer_compare.py                 # SD1.5 shapes: CPU 256 px / CUDA 512 px bf16
    python bench/peer_compare.py --smoke         # tiny model, 2 steps (what the test runs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = Path(os.environ.get("ATELIER_PEER_DIR", ROOT.parent / "shared" / "peer"))
METHODS = ["lora", "dora", "textual_inversion", "pivotal"]
PEER_SCRIPT = {
    "lora": "train_text_to_image_lora.py",
    "dora": "train_text_to_image_lora.py",
    "pivotal": "train_text_to_image_lora.py",
    "textual_inversion": "textual_inversion.py",
}
LORA_RANK = 16  # Atelier's default rank (and alpha); the peer's default is 4
TI_VECTORS = 4  # Atelier's default num_vectors; the peer's default is 1
TI_LR = 5e-3  # Atelier's default TI learning rate
STEPS_BAR = "Steps"  # desc of the peer scripts' training progress bar


# --- child processes ----------------------------------------------------------------------
def _peak_gpu_gb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**30


def _write(path: str, record: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(record))


def child_peer(script: Path, argv: list[str], result_path: str) -> None:
    """Run a peer script in this process with its "Steps" bar timestamped."""
    import atexit
    import runpy

    from tqdm import std

    stamps: list[float] = []
    update = std.tqdm.update

    def timed_update(self: Any, n: float | None = 1) -> bool | None:
        if str(getattr(self, "desc", "")).startswith(STEPS_BAR):
            stamps.append(time.time())
        return update(self, n)

    std.tqdm.update = timed_update  # type: ignore[method-assign]
    atexit.register(lambda: _write(result_path, {"stamps": stamps, "gpu_gb": _peak_gpu_gb()}))
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    runpy.run_path(str(script), run_name="__main__")


def _atelier_config(method: str, args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    """Atelier's defaults for `method`, with the bench's shape and no mid-run saving."""
    return {
        "type": method,
        "architecture": "sd15",
        "resolution": args.resolution,
        "train_batch_size": args.batch,
        "max_train_steps": args.steps,
        "seed": 0,
        "mixed_precision": "bf16" if cuda else "no",
        # The peer saves once at the end and renders nothing: same here.
        "save_every_n_steps": None,
        "validate_every_n_steps": None,
    }


def child_atelier(method: str, args: argparse.Namespace, result_path: str) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from worker.training.callbacks import TrainingCallbacks
    from worker.training.config import parse_config
    from worker.training.run import run_training
    from worker.training.types import Progress, TrainingExample

    class Recorder(TrainingCallbacks):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.last_step_at = 0.0

        def on_progress(self, progress: Progress) -> None:
            self.seconds.append(progress.seconds)
            if progress.step == progress.total_steps:
                self.last_step_at = time.time()

    rows = [
        json.loads(line)
        for line in (args.data / "metadata.jsonl").read_text().split("\n")
        if line.strip()
    ]
    examples = [TrainingExample(args.data / row["file_name"], row["text"]) for row in rows]
    config = parse_config(_atelier_config(method, args, torch.cuda.is_available()))
    recorder = Recorder()
    with tempfile.TemporaryDirectory() as out:
        run_training(config, examples, recorder, model_source=str(args.model), output_dir=Path(out))
    _write(
        result_path,
        {
            "seconds": recorder.seconds,
            "last_step_at": recorder.last_step_at,
            "gpu_gb": _peak_gpu_gb(),
        },
    )


# --- the parent ---------------------------------------------------------------------------
def _peer_argv(method: str, args: argparse.Namespace, out: Path, cuda: bool) -> list[str]:
    ti = PEER_SCRIPT[method] == "textual_inversion.py"
    common = [
        "--pretrained_model_name_or_path", str(args.model),
        "--train_data_dir", str(ti_folder(args.data) if ti else args.data),
        "--resolution", str(args.resolution),
        "--train_batch_size", str(args.batch),
        "--max_train_steps", str(args.steps),
        "--seed", "0",
        "--dataloader_num_workers", "0",
        "--mixed_precision", "bf16" if cuda else "no",
        "--output_dir", str(out),
    ]  # fmt: skip
    if ti:
        return common + [
            "--learnable_property", "object",
            "--placeholder_token", "<sks>",
            "--initializer_token", "a",
            "--num_vectors", str(TI_VECTORS),
            "--learning_rate", str(TI_LR),
            "--save_steps", "100000",
            "--repeats", "1",
        ]  # fmt: skip
    return common + [
        "--learning_rate", "1e-4",
        "--rank", str(LORA_RANK),
        "--snr_gamma", "5.0",
        "--max_grad_norm", "1.0",
        "--checkpointing_steps", "100000",
    ]  # fmt: skip


def _run_child(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any], float]:
    """(launch time, the child's record, its peak RSS in GB) of one contender's process.

    `command` holds a `{result}` placeholder for the file the child writes its record to."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name
    with tempfile.TemporaryFile() as log:
        launched = time.time()
        command = [result_path if part == "{result}" else part for part in command]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command[3:6])} failed ({process.returncode}):\n{tail}")
    record = json.loads(Path(result_path).read_text())
    os.unlink(result_path)
    return launched, record, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def _summary(
    step_seconds: list[float], wall_s: float, rss_gb: float, gpu_gb: float | None
) -> dict[str, Any]:
    steady = step_seconds[1:] or step_seconds
    return {
        "step_s": sum(steady) / len(steady),
        "wall_s": wall_s,
        "rss_gb": rss_gb,
        "gpu_gb": gpu_gb,
        "steps": len(step_seconds),
    }


def _child_command(*extra: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--result", "{result}", *extra]


def run_peer(method: str, args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    script = PEER_DIR / PEER_SCRIPT[method]
    with tempfile.TemporaryDirectory() as out:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(Path(out) / "datasets-cache"),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PEER_DIR), os.environ.get("PYTHONPATH")])
            ),
        }
        peer_argv = _peer_argv(method, args, Path(out) / "run", cuda)
        command = _child_command("--child", "peer", "--script", str(script), "--", *peer_argv)
        launched, record, rss = _run_child(command, env)
    stamps = record["stamps"]
    if len(stamps) != args.steps:
        raise RuntimeError(f"the peer timed {len(stamps)} steps, expected {args.steps}")
    # The first interval (launch to step 1) holds the peer's setup; _summary drops it.
    seconds = [stamps[0] - launched] + [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return _summary(seconds, stamps[-1] - launched, rss, record["gpu_gb"])


def run_atelier(method: str, args: argparse.Namespace) -> dict[str, Any]:
    command = _child_command(
        "--child", "atelier", "--method", method, "--model", str(args.model),
        "--data", str(args.data), "--resolution", str(args.resolution),
        "--batch", str(args.batch), "--steps", str(args.steps),
    )  # fmt: skip
    launched, record, rss = _run_child(command, dict(os.environ))
    if len(record["seconds"]) != args.steps:
        raise RuntimeError(f"Atelier timed {len(record['seconds'])} steps, expected {args.steps}")
    return _summary(record["seconds"], record["last_step_at"] - launched, rss, record["gpu_gb"])


def make_model(path: Path, size: str) -> None:
    """The peer folder's own random SD1.5-shaped model (`tiny` or `sd15`), once per folder."""
    if not (path / "model_index.json").exists():
        builder = str(PEER_DIR / "make_model.py")
        subprocess.run([sys.executable, builder, str(path), "--size", size], check=True)


def make_data(folder: Path, count: int, size: int) -> None:
    """The peer folder's synthetic images (metadata.jsonl with a `text` column), and the same
    images alone in a sibling folder: textual_inversion.py opens every file of its folder."""
    if not (folder / "metadata.jsonl").exists():
        builder = str(PEER_DIR / "make_data.py")
        subprocess.run([sys.executable, builder, str(folder), str(count), str(size)], check=True)
    prepare_ti_folder(folder)


def prepare_ti_folder(data: Path) -> None:
    images = ti_folder(data)
    if not images.exists():
        images.mkdir()
        for png in data.glob("*.png"):
            os.link(png, images / png.name)


def prepare_inputs(args: argparse.Namespace) -> None:
    size = "tiny" if args.smoke else "sd15"
    if args.model is None:
        args.model = Path(tempfile.gettempdir()) / f"atelier-peer-{size}"
    make_model(args.model, size)
    if args.data is None:
        name = f"atelier-peer-data-{args.images}-{args.resolution}"
        args.data = Path(tempfile.gettempdir()) / name
    make_data(args.data, args.images, args.resolution)


def ti_folder(data: Path) -> Path:
    return data.with_name(data.name + "-images-only")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "CPU"
    precision = "bf16" if cuda else "fp32"
    print(
        f"device={device} model={'tiny' if args.smoke else 'SD1.5-shaped (random)'} "
        f"res={args.resolution} batch={args.batch} steps={args.steps} images={args.images} "
        f"precision={precision} | {_load()}",
        flush=True,
    )
    print(
        f"{'method':18s} {'who':8s} {'s/step':>8s} {'wall s':>8s} {'RSS GB':>7s}"
        f"{' GPU GB' if cuda else ''}  {'load':>9s}  ratio peer/Atelier (s/step, wall)"
    )
    rows = []
    for method in args.methods.split(","):
        peer = {"who": "peer", "load": _load(), **run_peer(method, args, cuda)}
        _print(method, peer, cuda)
        ours = {"who": "Atelier", "load": _load(), **run_atelier(method, args)}
        speed, wall = peer["step_s"] / ours["step_s"], peer["wall_s"] / ours["wall_s"]
        _print(method, ours, cuda, f"  {speed:5.2f}x  {wall:5.2f}x")
        rows.append(
            {
                "method": method,
                "peer": peer,
                "atelier": ours,
                "speed_ratio": speed,
                "wall_ratio": wall,
            }
        )
    return rows


def _print(method: str, row: dict[str, Any], cuda: bool, ratio: str = "") -> None:
    gpu = f" {row['gpu_gb']:6.2f}" if cuda and row["gpu_gb"] is not None else ""
    load = row["load"].split(" on ")[0].removeprefix("load ")
    print(
        f"{method:18s} {row['who']:8s} {row['step_s']:8.2f} {row['wall_s']:8.1f} "
        f"{row['rss_gb']:7.2f}{gpu}  {load:>9s}{ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 steps, seconds")
    parser.add_argument("--steps", type=int, default=0, help="0 = 6 (2 with --smoke)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--resolution", type=int, default=0, help="0 = 256 on CPU, 512 on CUDA (32 with --smoke)"
    )
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--model", type=Path, default=None, help="model folder (built if absent)")
    parser.add_argument("--data", type=Path, default=None, help="image folder (built if absent)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--child", choices=["peer", "atelier"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--script", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "peer":
        child_peer(
            args.script, args.rest[1:] if args.rest[:1] == ["--"] else args.rest, args.result
        )
        return
    if args.child == "atelier":
        child_atelier(args.method, args, args.result)
        return
    import torch

    cuda = torch.cuda.is_available()
    args.steps = args.steps or (2 if args.smoke else 6)
    args.resolution = args.resolution or (32 if args.smoke else 512 if cuda else 256)
    if args.smoke:
        # A tiny model's ops are too small to split across threads; on a shared host the
        # spin-waits of a second thread made the peer's steps 10x slower.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    prepare_inputs(args)
    rows = compare(args)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
