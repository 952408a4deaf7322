"""A decoder language model for learners that fine-tune one (``model.name='decoder_lm'``).

Either an HF-format directory (``model.hf_dir``: ``config.json`` and safetensors, such as the
export of ``experiments/lm_pretrain.py``), or a freshly initialised model of ``model.lm``
(an architecture group as :func:`metalearn.lm.from_group` takes it: ``name='llama'`` or
``'qwen3'`` and its sizes) whose vocabulary is the task's tokenizer's.
"""

from metalearn.models.base import MODELS, ModelSpec
from metalearn.registry import ConfigError, Option

FRESH = dict(name="llama", hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
             num_kv_heads=2, head_dim=8)


def build(config, vocab_size: int):
  """The model of ``config`` (a ``model`` group) for a tokenizer of ``vocab_size`` ids."""
  from metalearn import lm  # pylint: disable=g-import-not-at-top
  if config.hf_dir:
    model = lm.hf.load(config.hf_dir)
    if model.config.vocab_size < vocab_size:
      raise ConfigError(f"model.hf_dir={config.hf_dir!r} has {model.config.vocab_size} "
                        f"embedding rows but the task's tokenizer {vocab_size} ids: set the "
                        "task's tokenizer to the model's (task.tokenizer=<the same directory>)")
    return model
  group = dict(config.lm)
  given = group.get("vocab_size")
  if given is not None and given < vocab_size:
    raise ConfigError(f"model.lm.vocab_size={given} is below the task's tokenizer's "
                      f"{vocab_size} ids: leave it out (it follows the tokenizer)")
  group["vocab_size"] = given or vocab_size
  return lm.create(lm.from_group(group), seed=config.seed)


def _check(config) -> None:
  m = config.model
  if m.hf_dir:
    return
  from metalearn import lm  # pylint: disable=g-import-not-at-top
  group = dict(m.lm)
  group.setdefault("vocab_size", 1)  # the tokenizer's size is known only when the task is built
  lm.from_group(group)


MODELS.register(ModelSpec(
    name="decoder_lm", doc="a Llama / Qwen3 decoder LM: an HF directory or freshly initialised",
    build=build, kind="lm", inputs=("sequence",), check=_check,
    options=dict(
        hf_dir=Option("", doc="an HF-format model directory ('': a fresh model of model.lm)"),
        lm=Option(FRESH, free=True, doc="a fresh model's architecture group (metalearn.lm."
                  "from_group: name='llama' or 'qwen3' and its sizes); vocab_size follows "
                  "the task's tokenizer"),
        seed=Option(0, ge=0, lt=2**31, doc="a fresh model's initialisation seed"))))
