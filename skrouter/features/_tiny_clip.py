"""A tiny open_clip architecture for tests, doctests and benchmarks.

The model has 16-dimensional embeddings, one transformer layer per tower,
32x32 pixel inputs and a 16-token context, so it builds in well under a second
on a CPU. Its weights are random: features from it carry no meaning, but they
are deterministic for a given seed, which is what tests need.

Two ways to use it:

- ``register_tiny_clip()`` adds the architecture to open_clip's registry under
  ``TINY_CLIP_NAME``, for ``CLIPFeaturizer(model_name=TINY_CLIP_NAME,
  pretrained=None, random_state=0)``;
- ``save_tiny_clip(folder, random_state=0)`` writes ``open_clip_config.json``
  and seeded weights into ``folder`` and returns ``"local-dir:<folder>"``, a
  ``model_name`` that loads like a real downloaded checkpoint.
"""

import json
import tempfile
from pathlib import Path

__all__ = ["TINY_CLIP_CONFIG", "TINY_CLIP_NAME", "register_tiny_clip", "save_tiny_clip"]

TINY_CLIP_NAME = "skrouter-tiny-clip"

# vocab_size must stay 49408, the size of open_clip's default BPE tokenizer.
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {
        "image_size": 32,
        "layers": 1,
        "width": 32,
        "head_width": 16,
        "patch_size": 16,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 16,
        "heads": 2,
        "layers": 1,
    },
}

_registered_folder = None


def register_tiny_clip():
    """Add the tiny architecture to open_clip's model registry.

    Registering again is a no-op.

    Returns
    -------
    name : str
        ``TINY_CLIP_NAME``, to pass as ``model_name``.
    """
    global _registered_folder
    import open_clip

    if TINY_CLIP_NAME in open_clip.list_models():
        return TINY_CLIP_NAME

    # open_clip reads configs only from files, and keeps what it read after
    # the file is gone, so a private temporary folder is enough.
    _registered_folder = Path(tempfile.mkdtemp(prefix="skrouter-tiny-clip-"))
    config_path = _registered_folder / f"{TINY_CLIP_NAME}.json"
    config_path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config_path)
    return TINY_CLIP_NAME


def save_tiny_clip(folder, random_state=0):
    """Write the tiny model with seeded random weights into ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Folder to create (or reuse). It receives ``open_clip_config.json`` and
        ``open_clip_model.safetensors`` (about 3.3 MB).
    random_state : int, default=0
        Seed of the weights.

    Returns
    -------
    model_name : str
        ``"local-dir:<folder>"``, to pass as ``model_name``.
    """
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    register_tiny_clip()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)

    # safetensors rejects tensors that share memory, so store copies.
    state = {
        name: tensor.contiguous().clone() for name, tensor in model.state_dict().items()
    }
    save_file(state, str(folder / "open_clip_model.safetensors"))

    config = {"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return f"local-dir:{folder}"
