"""HF-format checkpoints: round trips (float32, bfloat16, sharded with an index), config.json
conversion, and a clear error, with nothing lost, for every kind of bad checkpoint."""

import json

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metalearn import lm
from metalearn.lm import hf
from metalearn.registry import ConfigError

SMALL = dict(vocab_size=61, hidden_size=32, intermediate_size=48, num_layers=2, num_heads=4,
             num_kv_heads=2, head_dim=8)
TOKENS = jnp.asarray(np.random.RandomState(0).randint(0, 61, (2, 7)))


def small(name="qwen3", **kw):
  return lm.from_group(dict(name=name, **{**SMALL, **kw}))


def _logits(model):
  return np.asarray(model(TOKENS)[0])


@pytest.mark.parametrize("name,kw", [
    ("qwen3", dict(tie_word_embeddings=True)),
    ("llama", dict(attention_bias=True, mlp_bias=True, eos_token_id=(1, 2),
                   rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                     high_freq_factor=4.0,
                                     original_max_position_embeddings=64))),
])
def test_save_then_load_gives_the_same_model(tmp_path, name, kw):
  model = lm.create(small(name, **kw), seed=3)
  hf.save(model, tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["model_type"] == name and config["num_hidden_layers"] == 2
  again = hf.load(tmp_path)
  assert again.config == model.config
  np.testing.assert_array_equal(_logits(again), _logits(model))


def test_sharded_save_with_an_index_and_bfloat16(tmp_path):
  model = lm.create(small(), seed=0)
  hf.save(model, tmp_path, max_shard_bytes=20_000)
  index = json.loads((tmp_path / hf.INDEX).read_text())
  shards = sorted(set(index["weight_map"].values()))
  assert len(shards) > 2 and all((tmp_path / s).exists() for s in shards)
  np.testing.assert_array_equal(_logits(hf.load(tmp_path)), _logits(model))
  # Saving again, as one bfloat16 file, replaces the shards and the index.
  hf.save(model, tmp_path, dtype="bfloat16")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
  half = hf.load(tmp_path)
  assert half.config.param_dtype == "bfloat16" and half.embed[...].dtype == jnp.bfloat16
  np.testing.assert_allclose(_logits(half), _logits(model), atol=2e-2)
  as_f32 = hf.load(tmp_path, param_dtype="float32")
  assert as_f32.embed[...].dtype == jnp.float32


@pytest.fixture
def saved(tmp_path):
  model = lm.create(small(), seed=0)
  hf.save(model, tmp_path)
  (tmp_path / "tokenizer.json").write_text("{}")
  return tmp_path, _logits(model)


def test_a_truncated_or_corrupt_file_is_refused_by_name(saved):
  path, _ = saved
  data = (path / "model.safetensors").read_bytes()
  (path / "model.safetensors").write_bytes(data[: len(data) // 2])
  with pytest.raises(hf.CheckpointError, match="model.safetensors is not a readable "
                     "safetensors file.*truncated or corrupt"):
    hf.load(path)
  (path / "model.safetensors").write_bytes(b"\xff" * 64)
  with pytest.raises(hf.CheckpointError, match="truncated or corrupt"):
    hf.load(path)


def test_a_config_that_does_not_match_the_tensors_is_refused(saved):
  path, _ = saved
  config = json.loads((path / "config.json").read_text())
  for key, value, match in [("hidden_size", 48, "has shape .* but config.json implies"),
                            ("num_hidden_layers", 3, "implies tensors the files do not hold"),
                            ("num_hidden_layers", 1, "does not account for"),
                            ("model_type", "gpt2", "model_type 'gpt2' is not supported")]:
    (path / "config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises((hf.CheckpointError, ConfigError), match=match):
      hf.load(path)
  (path / "config.json").write_text("{not json")
  with pytest.raises(ConfigError, match="not valid JSON"):
    hf.load(path)


def test_unsupported_hf_features_are_refused_not_loaded_wrong():
  base = lm.to_hf(small())
  for key, value, match in [("hidden_act", "gelu", "hidden_act"),
                            ("use_sliding_window", True, "sliding-window"),
                            ("rope_parameters", dict(rope_type="dynamic", factor=2.0,
                                                     rope_theta=1e4), "dynamic")]:
    with pytest.raises(ConfigError, match=match):
      lm.from_hf({**base, key: value})


def test_a_failed_save_leaves_the_earlier_checkpoint_whole(saved, monkeypatch):
  path, logits = saved
  import safetensors.numpy

  def fail(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(safetensors.numpy, "save_file", fail)
  with pytest.raises(OSError, match="disk full"):
    hf.save(lm.create(small(), seed=9), path)
  assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors",
                                                     "tokenizer.json"]
  np.testing.assert_array_equal(_logits(hf.load(path)), logits)


def test_hf_config_round_trip_keeps_every_field():
  for c in (small("llama", bos_token_id=1, eos_token_id=2, pad_token_id=0),
            small("qwen3", rope_scaling=dict(rope_type="yarn", factor=4.0,
                                             original_max_position_embeddings=512))):
    assert lm.from_hf(lm.to_hf(c)) == c
  legacy = {**lm.to_hf(small("llama"))}
  legacy.pop("rope_parameters")
  legacy.update(rope_theta=5e5, rope_scaling=dict(type="linear", factor=2.0))
  c = lm.from_hf(legacy)
  assert c.rope_theta == 5e5 and c.rope == dict(rope_type="linear", factor=2.0)


def test_parameters_keep_their_logical_axes():
  model = lm.create(small())
  axes = nnx.get_partition_spec(nnx.state(model, nnx.Param))
  assert tuple(axes["layers"]["attn"]["q"].get_value()) == ("layers", "embed", "heads", "head_dim")
  assert tuple(axes["embed"].get_value()) == ("vocab", "embed")
  assert jax.tree.leaves(axes)
