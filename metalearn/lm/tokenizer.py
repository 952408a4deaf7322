"""Tokenizers through Hugging Face ``tokenizers``, all offline.

* :func:`load`: the ``tokenizer.json`` of a local model directory (any HF fast tokenizer);
* :func:`train_bpe`: a byte-level BPE trained on a local corpus (GPT-2 / Llama 3 / Qwen style:
  every byte is a token, so any text encodes, nothing is ever unknown);
* :func:`byte_level`: no training at all: the 256 bytes and the special tokens.

:func:`save` writes ``tokenizer.json`` with ``tokenizer_config.json`` and
``special_tokens_map.json`` beside a model's weights, so that ``transformers.AutoTokenizer``
loads the directory too. :func:`check_matches` refuses a tokenizer whose ids do not fit the
model's embedding.
"""

import json
import pathlib
from typing import Iterable, Sequence

from metalearn.lm.config import LMConfig

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SPECIALS = (BOS, EOS, PAD)


class TokenizerError(ValueError):
  """A tokenizer is missing, corrupt, or does not fit the model."""


class Tokenizer:
  """A ``tokenizers.Tokenizer`` with its special tokens' ids.

  Attributes:
    hf: the underlying ``tokenizers.Tokenizer``.
    bos_id, eos_id, pad_id: the special tokens' ids (``None`` where it has none).
  """

  def __init__(self, hf, bos: str | None = BOS, eos: str | None = EOS, pad: str | None = PAD):
    self.hf = hf
    self.bos, self.eos, self.pad = (t if t is not None and hf.token_to_id(t) is not None
                                    else None for t in (bos, eos, pad))
    self.bos_id, self.eos_id, self.pad_id = (None if t is None else hf.token_to_id(t)
                                             for t in (self.bos, self.eos, self.pad))

  @property
  def vocab_size(self) -> int:
    """Ids run from 0 to ``vocab_size - 1`` (special tokens included)."""
    return self.hf.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
    ids = self.hf.encode(text, add_special_tokens=False).ids
    return ([self.bos_id] if bos and self.bos_id is not None else []) + ids + \
        ([self.eos_id] if eos and self.eos_id is not None else [])

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return [e.ids for e in self.hf.encode_batch(list(texts), add_special_tokens=False)]

  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
    return self.hf.decode(list(ids), skip_special_tokens=skip_special)


def _byte_level_parts():
  from tokenizers import decoders, pre_tokenizers  # pylint: disable=g-import-not-at-top
  return (pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
          decoders.ByteLevel())


def train_bpe(texts: Iterable[str], vocab_size: int, specials: Sequence[str] = SPECIALS,
              min_frequency: int = 2) -> Tokenizer:
  """A byte-level BPE with ``vocab_size`` tokens (the 256 bytes, the merges, ``specials``)."""
  from tokenizers import Tokenizer as HFTokenizer  # pylint: disable=g-import-not-at-top
  from tokenizers import models, pre_tokenizers, trainers  # pylint: disable=g-import-not-at-top
  if vocab_size < 256 + len(specials):
    raise TokenizerError(f"vocab_size={vocab_size}: a byte-level BPE needs at least "
                         f"{256 + len(specials)} (256 bytes and {len(specials)} special tokens)")
  tok = HFTokenizer(models.BPE())
  tok.pre_tokenizer, tok.decoder = _byte_level_parts()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                special_tokens=list(specials), show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(texts, trainer=trainer)
  return Tokenizer(tok)


def byte_level(specials: Sequence[str] = SPECIALS) -> Tokenizer:
  """The untrained fallback: one token per byte, then ``specials``."""
  from tokenizers import Tokenizer as HFTokenizer  # pylint: disable=g-import-not-at-top
  from tokenizers import models, pre_tokenizers  # pylint: disable=g-import-not-at-top
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
  tok = HFTokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
  tok.pre_tokenizer, tok.decoder = _byte_level_parts()
  tok.add_special_tokens(list(specials))
  return Tokenizer(tok)


def save(tokenizer: Tokenizer, directory, model_max_length: int | None = None) -> None:
  """``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` in
  ``directory`` (transformers' ``AutoTokenizer`` reads them)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  tokenizer.hf.save(str(directory / "tokenizer.json"))
  special = {k: v for k, v in (("bos_token", tokenizer.bos), ("eos_token", tokenizer.eos),
                               ("pad_token", tokenizer.pad)) if v is not None}
  config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
            **special}
  if model_max_length:
    config["model_max_length"] = model_max_length
  (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
  (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


def load(directory) -> Tokenizer:
  """The tokenizer of a local model directory (its ``tokenizer.json``; special tokens from
  ``tokenizer_config.json`` where present)."""
  from tokenizers import Tokenizer as HFTokenizer  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory)
  path = directory / "tokenizer.json"
  if not path.exists():
    raise TokenizerError(f"{directory}: no tokenizer.json (save one with "
                         "metalearn.lm.tokenizer.save, or copy the model's)")
  try:
    hf = HFTokenizer.from_file(str(path))
  except Exception as e:  # tokenizers raises a plain Exception for a malformed file
    raise TokenizerError(f"{path} is not a tokenizers file ({e}): copy it again from the "
                         "model's source") from None
  names = {}
  config = directory / "tokenizer_config.json"
  if config.exists():
    data = json.loads(config.read_text())
    for key in ("bos_token", "eos_token", "pad_token"):
      value = data.get(key)
      names[key] = value.get("content") if isinstance(value, dict) else value
  return Tokenizer(hf, bos=names.get("bos_token", BOS), eos=names.get("eos_token", EOS),
                   pad=names.get("pad_token", PAD))


def check_matches(tokenizer: Tokenizer, config: LMConfig, where: str = "") -> None:
  """Refuses a tokenizer with ids the model's embedding has no row for."""
  if tokenizer.vocab_size > config.vocab_size:
    raise TokenizerError(
        f"{where + ': ' if where else ''}the tokenizer has {tokenizer.vocab_size} tokens but "
        f"the model's embedding has {config.vocab_size} rows: use the tokenizer the model was "
        "trained with (or a model with vocab_size >= the tokenizer's)")
