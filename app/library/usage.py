""""Use this model": the trigger to type and copyable steps per client (no torch).

The steps follow docs/formats.md: where each client looks for files, what to type, and the
diffusers calls (DoRA through Atelier's loader, SDXL embeddings in two calls).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.library.naming import EMBEDDING_FILE, LORA_FILE, download_name
from app.models import Model

BUNDLE_FILE = "lora_with_embedding.safetensors"


class ClientUsage(BaseModel):
    client: str = Field(description="comfyui, a1111, invokeai or diffusers.")
    files: list[str] = Field(description="Which of the model's files this client needs.")
    steps: list[str] = Field(description="What to do, in order.")
    snippet: str | None = Field(default=None, description="Text to copy (prompt or code).")


class UsageOut(BaseModel):
    model_id: str
    trigger: str | None = Field(description="What to type in prompts to call the concept.")
    file_stem: str = Field(description="Suggested file name (without extension) to save as.")
    clients: list[ClientUsage]
    note: str | None = None


def _stem(model: Model, stored: str) -> str:
    """The name (without extension) a stored file downloads under: the model's name for a LoRA,
    the trigger word for an embedding (A1111 and ComfyUI call embeddings by file name)."""
    return download_name(model, stored).rsplit(".", 1)[0]


def file_stem(model: Model) -> str:
    return _stem(model, EMBEDDING_FILE if model.type == "textual_inversion" else LORA_FILE)


def _has(model: Model, name: str) -> bool:
    return any(f["name"] == name for f in model.files)


def _comfyui(model: Model, stem: str, trigger: str | None) -> ClientUsage:
    emb = _stem(model, EMBEDDING_FILE)
    if model.type == "textual_inversion":
        return ClientUsage(client="comfyui", files=[EMBEDDING_FILE], steps=[
            f"Save {EMBEDDING_FILE} as ComfyUI/models/embeddings/{emb}.safetensors.",
            "Write the embedding in the prompt as shown."], snippet=f"embedding:{emb}")
    steps = [f"Save {LORA_FILE} as ComfyUI/models/loras/{stem}.safetensors.",
             f"Add a 'Load LoRA' node, pick {stem}.safetensors, strength 1.0."]
    files = [LORA_FILE]
    if model.type == "pivotal":
        files.append(EMBEDDING_FILE)
        steps.append(f"Save {EMBEDDING_FILE} as ComfyUI/models/embeddings/{emb}.safetensors "
                     "(ComfyUI does not read the embedding bundled in the one-file version).")
        return ClientUsage(client="comfyui", files=files, steps=steps,
                           snippet=f"a photo of embedding:{emb}")
    return ClientUsage(client="comfyui", files=files, steps=steps, snippet=trigger)


def _a1111(model: Model, stem: str, trigger: str | None) -> ClientUsage:
    if model.type == "textual_inversion":
        stem = _stem(model, EMBEDDING_FILE)
        return ClientUsage(client="a1111", files=[EMBEDDING_FILE], steps=[
            f"Save {EMBEDDING_FILE} as stable-diffusion-webui/embeddings/{stem}.safetensors.",
            "A1111 names embeddings after their file: type that name in the prompt."],
            snippet=stem)
    if model.type == "pivotal" and _has(model, BUNDLE_FILE):
        return ClientUsage(client="a1111", files=[BUNDLE_FILE], steps=[
            f"Save {BUNDLE_FILE} as stable-diffusion-webui/models/Lora/{stem}.safetensors "
            "(the LoRA with its embedding inside).",
            "Activate it and type its token in the prompt."],
            snippet=f"a photo of {trigger} <lora:{stem}:1>")
    prompt = f"{trigger} <lora:{stem}:1>" if trigger else f"<lora:{stem}:1>"
    return ClientUsage(client="a1111", files=[LORA_FILE], steps=[
        f"Save {LORA_FILE} as stable-diffusion-webui/models/Lora/{stem}.safetensors.",
        "Activate it in the prompt at weight 1."], snippet=prompt)


def _invokeai(model: Model, urls: dict[str, str]) -> ClientUsage:
    names = [EMBEDDING_FILE] if model.type == "textual_inversion" else [LORA_FILE]
    if model.type == "pivotal":
        # InvokeAI drops bundle_emb.* keys (docs/formats.md): the embedding is its own file.
        names.append(EMBEDDING_FILE)
    return ClientUsage(client="invokeai", files=names, steps=[
        "Model Manager > Add Model > URL or Local Path: paste each link below (valid for one "
        "hour: enough to install now), or download the file and give its local path.",
        "For a link that lasts (up to 365 days) and that you can revoke, for a remote or "
        "scripted InvokeAI: 'Create install link' in this dialog, or "
        f"POST /v1/models/{model.id}/links; it needs no API key.",
        "Embeddings are typed as <model name> in the prompt; LoRAs are added in the LoRA panel."],
        snippet="\n".join(urls[n] for n in names if n in urls))


def _diffusers(model: Model, trigger: str | None) -> ClientUsage:
    token = trigger or "<token>"
    lines = ["import torch"]
    files: list[str] = []
    if model.type != "textual_inversion":
        files.append(LORA_FILE)
        if model.type == "dora":
            lines += ["# diffusers drops DoRA magnitudes: Atelier's loader applies them",
                      "from worker.training.diffusers_loading import load_lora_into_pipeline",
                      f'load_lora_into_pipeline(pipe, "{LORA_FILE}")']
        else:
            lines.append(f'pipe.load_lora_weights("{LORA_FILE}")')
    if model.type in ("textual_inversion", "pivotal"):
        files.append(EMBEDDING_FILE)
        if model.architecture == "sdxl":
            lines += ["from safetensors.torch import load_file",
                      f'state = load_file("{EMBEDDING_FILE}")',
                      f'pipe.load_textual_inversion(state["clip_l"], token="{token}", '
                      "text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)",
                      f'pipe.load_textual_inversion(state["clip_g"], token="{token}", '
                      "text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)"]
        else:
            lines.append(f'pipe.load_textual_inversion("{EMBEDDING_FILE}", token="{token}")')
    prompt = f"a photo of {trigger}" if trigger else "a photo"
    lines.append(f'image = pipe("{prompt}").images[0]')
    return ClientUsage(client="diffusers", files=files, steps=[
        "Load the base model as a diffusers pipeline (`pipe`), then run:"],
        snippet="\n".join(lines))


def usage_for(model: Model, urls: dict[str, str]) -> UsageOut:
    """`urls`: file name -> a signed download URL (InvokeAI installs from a plain URL)."""
    stem, trigger = file_stem(model), model.trigger
    return UsageOut(
        model_id=model.id, trigger=trigger, file_stem=stem,
        clients=[_comfyui(model, stem, trigger), _a1111(model, stem, trigger),
                 _invokeai(model, urls), _diffusers(model, trigger)],
        note="Install links (POST /v1/models/{id}/links) work without an API key until they "
             "expire or are revoked; deleting the model revokes them all.",
    )
