"""A tiny random-init causal LM and byte-level BPE tokenizer with a Llama-3 chat template, built offline.

``ensure_tiny(cache_dir)`` returns a directory that ``AutoTokenizer.from_pretrained`` and
``AutoModelForCausalLM.from_pretrained`` load like any hub checkpoint.  It is built in about a second
from text shipped in this package (``assets/tokenizer-corpus.txt`` plus the synthetic arithmetic
data of :mod:`dpo_sweep_worker.data.synthetic`), so no test touches a model hub.

Tokenizer decisions (they mirror Meta Llama-3-Instruct, so code that works here works there):

* Byte-level BPE (every byte has a token: no ``unk``), trained with ``tokenizers``.  The
  pre-tokenizer is the Llama-3 split regex followed by ``ByteLevel(use_regex=False)``.  That regex
  keeps a run of newlines together (``\\s*[\\r\\n]+``), so the ``"\\n\\n"`` that ends a rendered
  generation prompt is the same token whether or not a completion follows.  Prompt tokens are then
  always a prefix of prompt+completion tokens.  The GPT-2 regex does not guarantee this.
* Special tokens: ``<|begin_of_text|>`` (BOS), ``<|end_of_text|>``, ``<|pad|>`` (PAD, its own id, so
  collators that mask padding never mask an end-of-turn), ``<|start_header_id|>``,
  ``<|end_header_id|>``, ``<|eot_id|>``.
* ``eos_token = "<|eot_id|>"``, the end of an assistant turn, as in Llama-3-Instruct.  TRL
  appends ``eos_token`` to non-conversational completions and uses it as SFT's stop token.
  Generation must stop there.  ``generation_config.eos_token_id`` is
  ``[<|eot_id|>, <|end_of_text|>]``.
* Encoding plain text adds BOS and never EOS (``add_bos_token=True``, ``add_eos_token=False``),
  like Llama-3.  Text that was already rendered by the chat template contains BOS, so it must be
  encoded with ``add_special_tokens=False``.  ``apply_chat_template(tokenize=True)`` and TRL both do
  that.
* Chat template: seed-spec §3.2.  It writes BOS before the first message, then for each message
  ``<|start_header_id|>ROLE<|end_header_id|>\\n\\n`` + trimmed content + ``<|eot_id|>``.  With
  ``add_generation_prompt`` it appends the assistant header.  Each assistant message's content and
  ``<|eot_id|>`` are wrapped in ``{% generation %}`` markers.  SFT's ``assistant_only_loss=True``
  therefore trains on assistant turns only, end-of-turn token included, and TRL's
  ``is_chat_template_stop_token_trained`` check passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

#: Bump when the build recipe changes so cached models are rebuilt.
BUILDER_VERSION = 1

BOS = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
PAD = "<|pad|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"
SPECIAL_TOKENS = [BOS, END_OF_TEXT, PAD, START_HEADER, END_HEADER, EOT]

#: Meta's Llama-3 pre-tokenizer split pattern.
LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: seed-spec §3.2 Llama-3 rendering, plus TRL's {% generation %} markers around assistant output.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first %}{{- bos_token }}{%- endif %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}"
    "{%- else %}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

#: ``ensure_tiny`` names and the ``build_tiny`` arguments they stand for.
PRESETS: dict[str, dict] = {
    "tiny-llama": {"kind": "llama", "hidden": 128, "layers": 2, "heads": 4, "intermediate": 512},
    "tiny-llama-h256": {"kind": "llama", "hidden": 256, "layers": 2, "heads": 4, "intermediate": 1024},
    "tiny-gpt2": {"kind": "gpt2", "hidden": 128, "layers": 2, "heads": 4, "intermediate": 512},
}

VOCAB_SIZE = 2048  # BPE target; the small corpus stops well short of it
MAX_POSITIONS = 2048
MANIFEST = "tiny.json"
_STALE_TMP_S = 3600


def corpus_lines() -> list[str]:
    """The tokenizer training text: the shipped English corpus, then the synthetic data strings."""
    from .data import synthetic

    english = resources.files("dpo_sweep_worker").joinpath("assets/tokenizer-corpus.txt").read_text("utf-8")
    lines = [line for line in english.splitlines() if line.strip()]
    # Role names occur in rendered chats; make sure they are in the corpus.
    lines.append("system user assistant")
    lines.extend(synthetic.corpus_texts(seed=0))
    return lines


def _recipe(kind: str, hidden: int, layers: int, heads: int, intermediate: int, seed: int) -> dict:
    if kind not in ("llama", "gpt2"):
        raise ValueError(f"unknown tiny model kind {kind!r}; use 'llama' or 'gpt2'")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    return {
        "builder_version": BUILDER_VERSION,
        "kind": kind,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "intermediate": intermediate,
        "seed": seed,
        "vocab_target": VOCAB_SIZE,
        "max_positions": MAX_POSITIONS,
        "chat_template": CHAT_TEMPLATE,
        "special_tokens": SPECIAL_TOKENS,
    }


def recipe_hash(recipe: dict, lines: list[str]) -> str:
    """sha256 over the recipe and the corpus text, hex, first 16 characters."""
    h = hashlib.sha256()
    h.update(json.dumps(recipe, sort_keys=True).encode())
    h.update(b"\0")
    h.update("\n".join(lines).encode())
    return h.hexdigest()[:16]


def _train_tokenizer(lines: list[str]):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        extra_special_tokens=[END_OF_TEXT, START_HEADER, END_HEADER],
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=MAX_POSITIONS,
        padding_side="right",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _make_model(recipe: dict, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, GPT2Config, LlamaConfig

    ids = {
        "bos_token_id": tokenizer.convert_tokens_to_ids(BOS),
        "eos_token_id": tokenizer.convert_tokens_to_ids(EOT),
        "pad_token_id": tokenizer.convert_tokens_to_ids(PAD),
    }
    vocab = len(tokenizer)
    if recipe["kind"] == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=recipe["hidden"],
            intermediate_size=recipe["intermediate"],
            num_hidden_layers=recipe["layers"],
            num_attention_heads=recipe["heads"],
            num_key_value_heads=recipe["heads"],
            max_position_embeddings=MAX_POSITIONS,
            tie_word_embeddings=False,
            **ids,
        )
    else:
        config = GPT2Config(
            vocab_size=vocab,
            n_embd=recipe["hidden"],
            n_layer=recipe["layers"],
            n_head=recipe["heads"],
            n_inner=recipe["intermediate"],
            n_positions=MAX_POSITIONS,
            tie_word_embeddings=False,
            **ids,
        )
    torch.manual_seed(recipe["seed"])
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"],
        eos_token_id=[ids["eos_token_id"], tokenizer.convert_tokens_to_ids(END_OF_TEXT)],
        pad_token_id=ids["pad_token_id"],
    )
    return model


def build_tiny(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    kind: str = "llama",
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 512,
) -> str:
    """Build the tokenizer and a random-init model (weights drawn with ``torch.manual_seed(seed)``).

    Writes ``save_pretrained`` output for both into *out_dir* (created if missing), plus
    ``tiny.json`` (the recipe and its hash).  Deterministic: the same arguments give byte-identical
    tokenizer files and weights.  Returns *out_dir* as a string.
    """
    recipe = _recipe(kind, hidden, layers, heads, intermediate, seed)
    lines = corpus_lines()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(lines)
    model = _make_model(recipe, tokenizer)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    manifest = {"hash": recipe_hash(recipe, lines), "recipe": recipe, "vocab_size": len(tokenizer)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return str(out)


def tiny_dir_name(name: str = "tiny-llama", seed: int = 0) -> str:
    """The cache directory name ``ensure_tiny`` uses: ``<name>-s<seed>-<hash>``."""
    if name not in PRESETS:
        raise ValueError(f"unknown tiny model {name!r}; known: {', '.join(PRESETS)}")
    recipe = _recipe(seed=seed, **PRESETS[name])
    return f"{name}-s{seed}-{recipe_hash(recipe, corpus_lines())}"


def build_atomically(final: Path, build) -> str:
    """Run ``build(tmp)`` in a temporary sibling of *final*, then rename it into place in one step: a
    crash never leaves a half-written model under the final name, and a concurrent builder that loses
    the race discards its copy (identical) and returns the winner's."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is shared like any model dir
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def ensure_tiny(cache_dir: str | os.PathLike, name: str = "tiny-llama", seed: int = 0) -> str:
    """Return ``<cache_dir>/<name>-s<seed>-<hash>``, building it first if it is not there yet.

    The hash covers ``BUILDER_VERSION``, the preset's config and the corpus text, so a changed
    recipe gets a new directory.  The build goes to a temporary sibling directory that is renamed into
    place in one step.  A crash therefore never leaves a half-written model under the final name.  A
    concurrent builder that loses the rename race discards its copy and returns the winner's.  A cache
    hit imports neither torch nor transformers.
    """
    cache = Path(cache_dir)
    final = cache / tiny_dir_name(name, seed)
    if final.is_dir():
        return str(final)
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(cache)
    return build_atomically(final, lambda tmp: build_tiny(tmp, seed=seed, **PRESETS[name]))


def _remove_stale_tmp(cache: Path) -> None:
    """Delete temporary build directories left behind by crashed builders (older than an hour)."""
    now = time.time()
    for p in cache.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
