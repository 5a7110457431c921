"""Sampling from a causal LM: k candidates per prompt, batched, reproducible per prompt.

Used by the rollout pipeline (:mod:`.rollout`, seed-spec §4) and by evaluation generation
(``facade.generate``, seed-spec §5.1–5.3).  Decisions, each fixing a seed bug (seed-spec §7):

* **Prompts.**  A prompt is a message list (rendered with the tokenizer's chat template and its
  generation prompt, then tokenised with ``add_special_tokens=False``: the template already wrote
  BOS, so there is exactly one, §7.8) or a raw string (e.g. TL;DR's ``"{post}\\n\\nTL;DR:"``,
  tokenised with the tokenizer's own special tokens).  Nothing is appended after the template: no
  second assistant header (§7.10).  A tokenizer without a chat template gets the project's Llama-3
  fallback (seed-spec §3.2).
* **Stopping.**  Generation stops at the tokenizer's EOS, the generation config's EOS ids and the
  chat template's end-of-turn tokens (``<|eot_id|>``, ``<|im_end|>``, ``<end_of_turn>``, any special
  token containing ``eot`` / ``end_of_turn``).  ``min_new_tokens`` suppresses them before that.
* **Seeding.**  Candidate ``j`` of a prompt is sampled with its own ``torch.Generator`` seeded with
  the first 8 bytes of ``sha256(f"{seed}\\0{prompt key}\\0{j}")`` (:func:`sample_seed`).  One uniform
  number per step per row is drawn from that row's generator, so a prompt's samples do not depend on
  which other prompts share its batch, on the batch size, or on what ran before: a resumed rollout
  equals an uninterrupted one, and batched equals one-prompt-at-a-time.
* **Batching.**  ``batch_size`` prompts per ``model.generate`` call, each repeated ``n`` times,
  left-padded (the model computes position ids from the attention mask).  Sampling itself
  (temperature, top-p, top-k, the per-row draw) runs in a logits processor that leaves exactly one
  finite score per row, and ``generate`` runs in greedy mode, so HF's KV cache, padding and stopping
  are reused unchanged.
* **Decoding.**  New tokens up to (not including) the first stop token, decoded without special
  tokens, cut at the first ``"\\n\\nHuman:"`` and stripped (seed-spec §3.5) — no regex over special
  tokens (§7.11).  ``raw`` keeps the special tokens, for debugging.
* **KL estimate.**  With a reference model, each sample's ``kl`` is
  ``Σ_t log π(y_t | x, y_<t) − log π_ref(y_t | x, y_<t)`` over its generated tokens (the stop token
  included when one was generated), both models scored by teacher forcing at temperature 1.  Its
  mean over samples drawn from π at temperature 1 is an unbiased estimate of KL(π ‖ π_ref).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

log = logging.getLogger("dpo_sweep_worker.generate")

#: Cut point of decoded candidates (seed-spec §3.5): a model that starts a new HH turn stops there.
HUMAN_TURN = "\n\nHuman:"
#: Known end-of-turn tokens of chat templates (Llama-3, ChatML, Gemma, Phi).
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")

Prompt = Any  # list[dict[str, str]] (messages) or str (raw text)


# --- prompt identity and seeds ---------------------------------------------------------------------


def normalise_prompt(prompt: Prompt) -> Prompt:
    """Messages reduced to ``{"role", "content"}`` (the fields that change the rendering); strings as is."""
    if isinstance(prompt, str):
        return prompt
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def prompt_key(prompt: Prompt) -> str:
    """Canonical text of a prompt: compact JSON with sorted keys (messages) or the JSON string (raw text)."""
    return json.dumps(normalise_prompt(prompt), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def prompt_id(prompt: Prompt) -> str:
    """Stable id of a prompt: the first 16 hex digits of sha256 of :func:`prompt_key`."""
    return hashlib.sha256(prompt_key(prompt).encode("utf-8")).hexdigest()[:16]


def sample_seed(seed: int, prompt: Prompt, index: int) -> int:
    """Seed of candidate *index* of *prompt*: first 8 bytes (big-endian) of
    ``sha256(f"{seed}\\0{prompt_key(prompt)}\\0{index}")``, masked to 63 bits."""
    digest = hashlib.sha256(f"{seed}\0{prompt_key(prompt)}\0{index}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def clean_response(text: str) -> str:
    """Seed-spec §3.5 cleaning of text decoded without special tokens: cut at the first
    ``"\\n\\nHuman:"``, strip."""
    cut = text.find(HUMAN_TURN)
    if cut >= 0:
        text = text[:cut]
    return text.strip()


# --- parameters and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingParams:
    """``temperature`` 0 means greedy; ``top_p`` 1 and ``top_k`` 0 mean no truncation."""

    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    max_new_tokens: int = 512
    min_new_tokens: int = 0
    seed: int = 42

    def __post_init__(self) -> None:
        from .runtime import SpecError

        if self.n < 1:
            raise SpecError(f"n (candidates per prompt) must be at least 1, got {self.n}")
        if self.temperature < 0:
            raise SpecError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise SpecError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise SpecError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise SpecError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise SpecError(f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")

    @classmethod
    def from_request(cls, request: dict, **defaults: Any) -> "SamplingParams":
        values = dict(defaults)
        for name in ("n", "temperature", "top_p", "top_k", "max_new_tokens", "min_new_tokens", "seed"):
            if request.get(name) is not None:
                values[name] = request[name]
        return cls(
            n=int(values.get("n", 1)),
            temperature=float(values.get("temperature", 0.7)),
            top_p=float(values.get("top_p", 0.9)),
            top_k=int(values.get("top_k", 0)),
            max_new_tokens=int(values.get("max_new_tokens", 512)),
            min_new_tokens=int(values.get("min_new_tokens", 0)),
            seed=int(values.get("seed", 42)),
        )

    def generation_kwargs(self) -> dict:
        """The seed manifest's ``generation_kwargs`` (plus ``top_k``)."""
        return {
            "do_sample": self.temperature > 0,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_new_tokens": self.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
        }


@dataclass
class Sample:
    """One generated candidate."""

    text: str  #: cleaned (seed-spec §3.5)
    raw: str  #: decoded with special tokens, stop token included
    token_ids: list[int]  #: generated ids up to and including the stop token (if any)
    stopped: bool  #: ended with a stop token (else it hit max_new_tokens)
    kl: float | None = None


@dataclass
class BatchStats:
    prompts: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# --- the sampler ------------------------------------------------------------------------------------


class RowSampler:
    """A logits processor that samples each row with its own generator.

    Returns scores that are ``-inf`` everywhere but at the sampled token, so ``generate`` in greedy
    mode takes exactly the sampled token.  Order of operations (as in HF sampling): suppress stop
    tokens before ``min_new_tokens``, divide by the temperature, keep the top-k, keep the smallest
    set of most likely tokens whose mass reaches top-p, then draw by inverse CDF with one uniform
    number from the row's generator.
    """

    def __init__(self, params: SamplingParams, seeds: Sequence[int], prompt_len: int, stop_ids: Sequence[int]):
        import torch

        self.params = params
        self.prompt_len = prompt_len
        self.stop_ids = list(stop_ids)
        # Row r's draw for step t is the t-th number of its own stream: drawn up front, one call per row.
        rows = []
        for s in seeds:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(s))
            rows.append(torch.rand(params.max_new_tokens, generator=g, dtype=torch.float64))
        self.uniforms = torch.stack(rows) if rows else torch.zeros((0, params.max_new_tokens), dtype=torch.float64)

    def __call__(self, input_ids, scores):
        import torch

        p = self.params
        logits = scores.float()
        step = input_ids.shape[1] - self.prompt_len
        if step < p.min_new_tokens and self.stop_ids:
            logits = logits.clone()
            logits[:, self.stop_ids] = float("-inf")
        rows = logits.shape[0]
        # (Steps past max_new_tokens only happen in HF's deferred stop check, and are undone.)
        u = self.uniforms[:rows, min(step, self.uniforms.shape[1] - 1)]
        if p.temperature == 0:
            chosen = torch.argmax(logits, dim=-1)
        else:
            logits = logits / p.temperature
            if p.top_k and p.top_k < logits.shape[-1]:
                kth = torch.topk(logits, p.top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            if p.top_p < 1.0:
                probs = probs.masked_fill(probs < top_p_threshold(probs, p.top_p), 0.0)
            cdf = torch.cumsum(probs, dim=-1)
            target = (u.to(device=cdf.device, dtype=cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
            idx = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.shape[-1] - 1)
            # Never land on a zero-probability slot (u * total exactly at the edge of a dropped token).
            chosen = _skip_zero_mass(probs, idx).squeeze(-1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen.view(-1, 1).to(out.device), 0.0)
        return out


def top_p_threshold(probs, top_p: float):
    """Per row, the probability ``t`` of the last token of the nucleus: sorted by probability, the
    smallest prefix whose mass reaches *top_p* ends at a token of probability ``t``.  Keeping
    ``probs >= t`` is the nucleus (tokens tied with ``t`` all kept), independent of sort stability.
    Only values are sorted (numpy on CPU: about 10x faster than ``torch.sort`` there), ascending,
    so the cumulative sum runs over contiguous memory."""
    import numpy as np
    import torch

    if probs.device.type == "cpu":
        asc = torch.from_numpy(np.sort(probs.numpy(), axis=-1))
    else:
        asc = torch.sort(probs, dim=-1).values
    cum = torch.cumsum(asc, dim=-1)
    # Ascending, the tokens outside the nucleus are a prefix: those whose inclusive prefix mass is
    # at most 1 - top_p (the rest, from the top, is the smallest set reaching top_p).
    n_out = (cum <= cum[:, -1:] - top_p).sum(dim=-1).clamp(max=asc.shape[-1] - 1)
    return asc.gather(-1, n_out.unsqueeze(-1)).to(probs.device)


def _skip_zero_mass(probs, idx):
    import torch

    picked = probs.gather(-1, idx)
    if bool((picked > 0).all()):
        return idx
    # Rare: step back to the last slot with mass.
    fixed = idx.clone()
    for r in range(idx.shape[0]):
        if probs[r, idx[r, 0]] > 0:
            continue
        nz = torch.nonzero(probs[r, : idx[r, 0] + 1] > 0)
        fixed[r, 0] = nz[-1, 0] if len(nz) else torch.nonzero(probs[r] > 0)[0, 0]
    return fixed


# --- the generator ----------------------------------------------------------------------------------


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """EOS of the tokenizer and of the generation config, plus the chat template's end-of-turn tokens."""
    ids: list[int] = []

    def add(value) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            for v in value:
                add(v)
            return
        if int(value) not in ids:
            ids.append(int(value))

    add(tokenizer.eos_token_id)
    config = getattr(model, "generation_config", None)
    if config is not None:
        add(getattr(config, "eos_token_id", None))
    vocab = tokenizer.get_vocab()
    specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
    specials |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if getattr(t, "special", False)}
    for token in END_OF_TURN_TOKENS:
        if token in vocab and (token in specials or token == "<|eot_id|>"):
            add(vocab[token])
    for token in sorted(specials):
        low = token.lower()
        if ("eot" in low or "end_of_turn" in low) and token in vocab:
            add(vocab[token])
    return ids


def preallocated_cache(model, capacity: int):
    """A ``DynamicCache`` whose full-attention layers write keys and values into buffers of
    *capacity* positions and hand out views, instead of concatenating the whole cache every step
    (HF's ``DynamicLayer``: O(length) copying per token; measured about 1.05-1.1x the batched
    tokens/s on CPU, same samples).  Sliding-window and other layer kinds are left as they are.
    ``None`` when the model's cache cannot be built this way."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:  # pragma: no cover - another transformers
        return None

    class _PreallocatedLayer(DynamicLayer):
        def __init__(self, size: int):
            super().__init__()
            self.capacity = size
            self.length = 0

        def lazy_initialization(self, key_states, value_states) -> None:
            import torch

            self.dtype, self.device = key_states.dtype, key_states.device
            b, h, _, d = key_states.shape
            self._k = torch.empty((b, h, self.capacity, d), dtype=key_states.dtype, device=key_states.device)
            self._v = torch.empty((b, h, self.capacity, value_states.shape[-1]), dtype=value_states.dtype, device=value_states.device)
            self.length = 0
            self.keys, self.values = self._k[:, :, :0], self._v[:, :, :0]
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            import torch

            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2]:  # more than planned (never in generate): grow
                size = max(end, 2 * self._k.shape[-2])
                k = torch.empty(self._k.shape[:2] + (size, self._k.shape[-1]), dtype=self.dtype, device=self.device)
                v = torch.empty(self._v.shape[:2] + (size, self._v.shape[-1]), dtype=self.dtype, device=self.device)
                k[:, :, : self.length] = self._k[:, :, : self.length]
                v[:, :, : self.length] = self._v[:, :, : self.length]
                self._k, self._v = k, v
            self._k[:, :, self.length : end] = key_states
            self._v[:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            self.length = self.keys.shape[-2]

    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # noqa: BLE001 - fall back to HF's own cache
        return None
    cache.layers = [_PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class Generator:
    """A causal LM and its tokenizer, ready to sample (HF transformers)."""

    engine = "hf"

    def __init__(
        self,
        model: str,
        *,
        cache_dir: str,
        precision: str = "auto",
        device_map: Any = None,
        model_name: str | None = None,
        attn_implementation: str | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .runtime import SpecError, resolve_device, resolve_model

        self.name = model_name or model
        path = resolve_model(model, cache_dir)
        self.path = path
        self.device = resolve_device({"precision": precision})
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise SpecError(f"cannot load the model {model!r} (tokenizer): {e}") from e
        self.tokenizer.padding_side = "left"
        if not getattr(self.tokenizer, "chat_template", None):
            from .tiny import CHAT_TEMPLATE

            log.warning("%s has no chat template: using the project's Llama-3 fallback (seed-spec §3.2)", self.name)
            self.tokenizer.chat_template = CHAT_TEMPLATE
        kwargs: dict[str, Any] = {"dtype": self.device.torch_dtype}
        if device_map is not None:
            kwargs["device_map"] = device_map
        # On CPU plain attention beats SDPA for decoding (measured on the tiny Llama: 1.2x the
        # batched tokens/s, same samples); on GPUs the model's default (SDPA / flash) stays.
        attn = attn_implementation or ("eager" if self.device.kind == "cpu" else None)
        if attn:
            kwargs["attn_implementation"] = attn
        try:
            self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as e:
            raise SpecError(f"cannot load {model!r} as a causal language model: {e}") from e
        if device_map is None:
            self.model.to(self.device.kind)
        self.model.eval()
        self.stop_ids = stop_token_ids(self.tokenizer, self.model)
        if not self.stop_ids:
            raise SpecError(f"{self.name}: the tokenizer has no EOS or end-of-turn token to stop at")
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.stop_ids[0]
        self._torch = torch

    @property
    def input_device(self):
        return next(self.model.parameters()).device

    # -- prompts --

    def render(self, prompt: Prompt) -> tuple[str, list[int]]:
        """The exact generation string and its token ids (one BOS, no second assistant header)."""
        if isinstance(prompt, str):
            ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
            return prompt, list(ids)
        text = self.tokenizer.apply_chat_template(normalise_prompt(prompt), tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text, list(ids)

    # -- sampling --

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        batch_size: int = 8,
        on_batch: Callable[[list[int], list[list[Sample]], BatchStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        sort_by_length: bool = True,
    ) -> list[list[Sample] | None]:
        """``n`` samples for each prompt, ``batch_size`` prompts per ``model.generate`` call.

        With *sort_by_length* the prompts are batched longest first, so a batch pads to similar
        lengths (measured: about 1.3x the tokens/s of batches in file order on HH prompts); samples
        do not depend on the batching.  The result is in the order of *prompts*.
        ``on_batch(indices, samples, stats)`` runs after each call (indices into *prompts*).  When
        ``should_stop()`` turns true the batches not yet started are skipped: their entries are
        ``None``.
        """
        return run_batches(self, prompts, params, batch_size=batch_size, on_batch=on_batch, should_stop=should_stop, sort_by_length=sort_by_length)

    def generate_batch(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Sample]]:
        """One ``model.generate`` call: ``len(prompts) × params.n`` rows, left-padded."""
        torch = self._torch
        from transformers import GenerationConfig, LogitsProcessorList

        encoded = [self.render(p)[1] for p in prompts]
        rows: list[list[int]] = []
        seeds: list[int] = []
        for p, ids in zip(prompts, encoded):
            for j in range(params.n):
                rows.append(ids)
                seeds.append(sample_seed(params.seed, p, j))
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            attention[i, width - len(r) :] = 1
        device = self.input_device
        sampler = RowSampler(params, seeds, width, self.stop_ids)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=list(self.stop_ids),
            pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        extra = {}
        cache = preallocated_cache(self.model, width + params.max_new_tokens)
        if cache is not None:
            extra["past_key_values"] = cache
        with torch.inference_mode():
            sequences = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                generation_config=config,
                logits_processor=LogitsProcessorList([sampler]),
                **extra,
            )
        new = sequences[:, width:].tolist()
        stop = set(self.stop_ids)
        results: list[list[Sample]] = []
        for i in range(len(prompts)):
            group = []
            for j in range(params.n):
                ids = new[i * params.n + j]
                cut = next((t for t, tok in enumerate(ids) if tok in stop), None)
                kept = ids if cut is None else ids[: cut + 1]
                body = kept if cut is None else kept[:-1]
                text = self.tokenizer.decode(body, skip_special_tokens=True)
                raw = self.tokenizer.decode(kept, skip_special_tokens=False)
                group.append(Sample(text=clean_response(text), raw=raw, token_ids=kept, stopped=cut is not None))
            results.append(group)
        return results

    # -- scoring --

    def sequence_logps(self, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]], batch_size: int = 8) -> list[float]:
        """Σ log p(completion token | prefix) per row, teacher-forced at temperature 1."""
        return sequence_logps(self.model, prompt_ids, completion_ids, pad_id=self.pad_id, batch_size=batch_size)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        from .runtime import release_memory

        release_memory()


def run_batches(gen, prompts, params: SamplingParams, *, batch_size: int, on_batch=None, should_stop=None, sort_by_length: bool = True) -> list:
    """The batching loop of both engines (see :meth:`Generator.generate`)."""
    n = len(prompts)
    size = max(1, batch_size)
    order = list(range(n))
    if sort_by_length and size < n:
        lengths = [len(gen.render(p)[1]) for p in prompts]
        order.sort(key=lambda i: -lengths[i])  # stable: ties keep their order
    out: list = [None] * n
    for start in range(0, n, size):
        if should_stop is not None and should_stop():
            break
        idx = order[start : start + size]
        batch = [prompts[i] for i in idx]
        t0 = time.perf_counter()
        samples = gen.generate_batch(batch, params)
        stats = BatchStats(
            prompts=len(batch),
            samples=sum(len(g) for g in samples),
            tokens=sum(len(x.token_ids) for g in samples for x in g),
            seconds=time.perf_counter() - t0,
        )
        for i, g in zip(idx, samples):
            out[i] = g
        if on_batch is not None:
            on_batch(idx, samples, stats)
    return out


def sequence_logps(model, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]], *, pad_id: int, batch_size: int = 8) -> list[float]:
    """Summed log-probabilities of each completion after its prompt (left-padded batches, explicit
    position ids, so padding never changes a row's value).  An empty completion scores 0."""
    import torch

    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(prompt_ids), batch_size):
        ps = prompt_ids[start : start + batch_size]
        cs = completion_ids[start : start + batch_size]
        seqs = [list(p) + list(c) for p, c in zip(ps, cs)]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for i, (p, c) in enumerate(zip(ps, cs)):
            if not c:
                out.append(0.0)
                continue
            end = width
            begin = width - len(c)
            targets = ids[i, begin:end].to(logp.device)
            rows = logp[i, begin - 1 : end - 1]
            out.append(float(rows.gather(-1, targets.view(-1, 1)).sum()))
    return out


def add_kl(policy: Generator, reference, prompts: Sequence[Prompt], samples: list[list[Sample]], *, batch_size: int = 8) -> None:
    """Fill each sample's ``kl`` = Σ log π − log π_ref over its generated tokens (see the module doc).

    *reference* is a model sharing the policy's tokenizer (a ``PreTrainedModel``)."""
    prompt_ids: list[list[int]] = []
    completions: list[list[int]] = []
    flat: list[Sample] = []
    for prompt, group in zip(prompts, samples):
        ids = policy.render(prompt)[1]
        for s in group:
            prompt_ids.append(ids)
            completions.append(s.token_ids)
            flat.append(s)
    lp = sequence_logps(policy.model, prompt_ids, completions, pad_id=policy.pad_id, batch_size=batch_size)
    lr = sequence_logps(reference, prompt_ids, completions, pad_id=policy.pad_id, batch_size=batch_size)
    for s, a, b in zip(flat, lp, lr):
        s.kl = a - b


def load_reference(ref: str, cache_dir: str, like: Generator):
    """The reference model for KL estimates, on the policy's device and dtype; its tokenizer must
    agree with the policy's (same vocabulary size and ids of the special tokens)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .runtime import SpecError, resolve_model

    path = resolve_model(ref, cache_dir)
    tok = AutoTokenizer.from_pretrained(path)
    if len(tok) != len(like.tokenizer) or tok.eos_token_id != like.tokenizer.eos_token_id:
        raise SpecError(f"reference {ref} has a different tokenizer than the policy {like.name}: the KL estimate needs one vocabulary")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=like.device.torch_dtype)
    model.to(like.input_device)
    model.eval()
    return model


# --- vLLM ---------------------------------------------------------------------------------------------


def require_vllm() -> None:
    import importlib.util

    from .runtime import SpecError

    if importlib.util.find_spec("vllm") is None:
        raise SpecError(
            "engine vllm needs the vllm package (GPU machines): install it into the worker's environment "
            "(pip install vllm), or use engine hf (st in seed configs)"
        )


class VllmGenerator:
    """The same interface on vLLM (GPU machines).  Each (prompt, candidate) is its own request with
    ``seed = sample_seed(seed, prompt, j)``, so candidates do not depend on batching here either
    (vLLM's samples differ from the HF engine's: another sampler)."""

    engine = "vllm"

    def __init__(self, model: str, *, cache_dir: str, precision: str = "auto", gpu_memory_utilization: float = 0.9, model_name: str | None = None, seed: int = 42):
        require_vllm()
        from transformers import AutoTokenizer
        from vllm import LLM  # type: ignore[import-not-found]

        from .runtime import resolve_device, resolve_model

        self.name = model_name or model
        path = resolve_model(model, cache_dir)
        self.path = path
        self.device = resolve_device({"precision": precision})
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not getattr(self.tokenizer, "chat_template", None):
            from .tiny import CHAT_TEMPLATE

            self.tokenizer.chat_template = CHAT_TEMPLATE
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.llm = LLM(model=path, seed=seed, dtype=self.device.dtype_name, gpu_memory_utilization=gpu_memory_utilization)

    render = Generator.render

    def generate(self, prompts, params: SamplingParams, *, batch_size: int = 500, on_batch=None, should_stop=None, sort_by_length: bool = False):
        # vLLM schedules its own batches: prompts go in file order.
        return run_batches(self, prompts, params, batch_size=batch_size, on_batch=on_batch, should_stop=should_stop, sort_by_length=False)

    def generate_batch(self, prompts, params: SamplingParams) -> list[list[Sample]]:
        from vllm import SamplingParams as VSP  # type: ignore[import-not-found]

        requests, sps = [], []
        for p in prompts:
            ids = self.render(p)[1]
            for j in range(params.n):
                requests.append({"prompt_token_ids": ids})
                sps.append(
                    VSP(
                        n=1,
                        temperature=params.temperature,
                        top_p=params.top_p,
                        top_k=params.top_k if params.top_k else -1,
                        max_tokens=params.max_new_tokens,
                        min_tokens=params.min_new_tokens,
                        stop_token_ids=list(self.stop_ids),
                        seed=sample_seed(params.seed, p, j),
                        skip_special_tokens=True,
                    )
                )
        outputs = self.llm.generate(requests, sampling_params=sps, use_tqdm=False)
        stop = set(self.stop_ids)
        results: list[list[Sample]] = []
        for i in range(len(prompts)):
            group = []
            for j in range(params.n):
                o = outputs[i * params.n + j].outputs[0]
                ids = list(o.token_ids)
                stopped = bool(ids) and ids[-1] in stop
                raw = self.tokenizer.decode(ids, skip_special_tokens=False)
                body = ids[:-1] if stopped else ids
                text = self.tokenizer.decode(body, skip_special_tokens=True)
                group.append(Sample(text=clean_response(text), raw=raw, token_ids=ids, stopped=stopped))
            results.append(group)
        return results

    def close(self) -> None:
        self.llm = None
        from .runtime import release_memory

        release_memory()


def make_generator(engine: str, model: str, *, cache_dir: str, precision: str = "auto", device_map: Any = None, model_name: str | None = None, gpu_memory_utilization: float = 0.9, seed: int = 42):
    """``hf`` (also the seed's ``st``) or ``vllm``."""
    from .runtime import SpecError

    engine = (engine or "hf").lower()
    if engine in ("hf", "st", "transformers"):
        return Generator(model, cache_dir=cache_dir, precision=precision, device_map=device_map, model_name=model_name)
    if engine == "vllm":
        return VllmGenerator(model, cache_dir=cache_dir, precision=precision, gpu_memory_utilization=gpu_memory_utilization, model_name=model_name, seed=seed)
    raise SpecError(f"unknown engine {engine!r}; use hf (seed: st) or vllm")


# --- evaluation outputs (seed-spec §5.1–5.3) ------------------------------------------------------------

#: TL;DR post fields, in the seed's auto-detection order (seed-spec §2.2).
POST_FIELDS = ("post", "content", "article", "document", "body")
TLDR_SUFFIX = "TL;DR:"
EVAL_FORMATS = ("alpaca", "tldr", "hh", "list", "messages", "generated", "pairs")


def tldr_prompt(post: str) -> str:
    """``"{post}\\n\\nTL;DR:"``, unless the text already ends with ``TL;DR:`` (trl-lib/tldr's
    ``prompt`` column does; the seed appended a second one, §7.15)."""
    text = post.strip()
    return text if text.endswith(TLDR_SUFFIX) else f"{text}\n\n{TLDR_SUFFIX}"


def _instruction_of(messages: list[dict]) -> str:
    """A single user turn is its text; a longer conversation is its HH transcript (what judges show)."""
    from .data.hh import messages_to_hh

    if len(messages) == 1:
        return messages[0]["content"]
    return messages_to_hh(messages).lstrip("\n")


def _read_eval_records(source: str, split: str) -> list[Any]:
    import os as _os
    from pathlib import Path

    from .data import DataError
    from .data.load import _Invalid, _is_local, _read_hub, _read_local

    path = Path(_os.path.expanduser(source))
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DataError("file not found", source=source)
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if _is_local(source) and not path.is_dir():
        records = _read_local(source, split)
        for line, record in records:
            # A line that is not JSON is a damaged file, not a prompt to skip quietly.
            if isinstance(record, _Invalid):
                raise DataError(f"{record.detail}; fix or delete this line", source=source, line=line)
        return [record for _line, record in records]
    return [record for _line, record in _read_hub(source, split, None)]


def detect_eval_format(record: Any) -> str:
    from .data.convert import detect_format

    if isinstance(record, str):
        return "list"
    if not isinstance(record, dict):
        return "unknown"
    if "instruction" in record:
        return "alpaca"
    if "post" in record or (isinstance(record.get("prompt"), str) and record["prompt"].rstrip().endswith(TLDR_SUFFIX) and "rejected" not in record):
        return "tldr"
    fmt = detect_format(record)
    return fmt or "unknown"


def load_eval_prompts(source: str, *, split: str = "train", fmt: str | None = None, dataset: str | None = None, limit: int | None = None) -> tuple[list[dict], dict]:
    """Evaluation prompts: ``[{"prompt": messages | str, "instruction": str, "dataset": str}]`` and
    ``{"format", "records", "skipped": {reason: n}}``.

    Formats (detected from the first record unless *fmt* says):
    ``alpaca`` (``{instruction, input?, dataset?}``: instruction + input as the user turn),
    ``tldr`` (``{post}`` or a ``prompt`` ending in ``TL;DR:``: the raw string ``"{post}\\n\\nTL;DR:"``,
    no chat template; instruction = the post), ``hh`` (HH pairs: single-turn transcripts only, the
    user turn is the instruction, seed §5.1), ``list`` (JSON strings or ``.txt`` lines: one user turn
    each), and ``messages`` / ``generated`` / ``pairs`` (as training data; multi-turn prompts keep
    their turns, the instruction is their HH transcript).
    """
    from pathlib import Path as _Path

    from .data import DataError, parse_hh_to_messages
    from .data.convert import RowError, convert

    records = _read_eval_records(source, split)
    if not records:
        raise DataError("no records", source=source)
    first = next((r for r in records if isinstance(r, (dict, str))), None)
    kind = fmt or detect_eval_format(first)
    if kind not in EVAL_FORMATS:
        raise DataError(
            f"cannot tell the prompt format (first record: {sorted(first) if isinstance(first, dict) else type(first).__name__}); "
            f"expected AlpacaEval {{instruction}}, TL;DR {{post}}, HH {{chosen, rejected}}, message data or a list of strings; or set the format ({', '.join(EVAL_FORMATS)})",
            source=source,
        )
    default_dataset = dataset or _Path(source).stem
    out: list[dict] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for record in records:
        if limit is not None and len(out) >= limit:
            break
        if kind == "list":
            if not isinstance(record, str) or not record.strip():
                skip("not_a_string")
                continue
            out.append({"prompt": [{"role": "user", "content": record.strip()}], "instruction": record.strip(), "dataset": default_dataset})
            continue
        if not isinstance(record, dict):
            skip("not_an_object")
            continue
        name = record.get("dataset") if isinstance(record.get("dataset"), str) else default_dataset
        if kind == "alpaca":
            text = record.get("instruction")
            if not isinstance(text, str) or not text.strip():
                skip("empty_instruction")
                continue
            extra = record.get("input")
            user = text.strip() + (f"\n\n{extra.strip()}" if isinstance(extra, str) and extra.strip() else "")
            out.append({"prompt": [{"role": "user", "content": user}], "instruction": text, "dataset": name})
        elif kind == "tldr":
            post = next((record[f] for f in POST_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
            if post is None and isinstance(record.get("prompt"), str) and record["prompt"].strip():
                post = record["prompt"]
            if post is None:
                skip("no_post")
                continue
            out.append({"prompt": tldr_prompt(post), "instruction": post, "dataset": name})
        elif kind == "hh":
            chosen = record.get("chosen")
            msgs = parse_hh_to_messages(chosen) if isinstance(chosen, str) else []
            if [m["role"] for m in msgs] != ["user", "assistant"]:
                skip("not_single_turn")
                continue
            out.append({"prompt": msgs[:1], "instruction": msgs[0]["content"], "dataset": name})
        else:
            try:
                row = convert(record, kind, "prompts")
            except RowError as e:
                skip(e.reason)
                continue
            out.append({"prompt": row["prompt"], "instruction": _instruction_of(row["prompt"]), "dataset": name})
    if not out:
        raise DataError(f"no usable prompts as {kind!r} (skipped: {skipped})", source=source)
    return out, {"format": kind, "records": len(records), "skipped": skipped}


def _write_outputs(path, records: list[dict]) -> None:
    import os as _os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{_os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        if path.suffix.lower() == ".jsonl":
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            json.dump(records, f, ensure_ascii=False, indent=2)
            f.write("\n")
    _os.replace(tmp, path)


def default_generator_name(model: str) -> str:
    """``builtin:tiny-llama`` → ``tiny-llama``; ``runs/<id>/final`` → ``<id>``; ``org/model`` → ``model``."""
    import re
    from pathlib import Path

    if model.startswith("builtin:"):
        return model[len("builtin:") :]
    path = Path(model.rstrip("/"))
    if path.name == "final" or re.fullmatch(r"checkpoint-\d+", path.name):
        return path.parent.name or model
    return path.name or model


def run_generate(request: dict) -> dict:
    """``facade.generate``: a model's outputs for evaluation prompts, in AlpacaEval format.

    Request: ``model`` (dir, ``builtin:…`` or hub id), ``prompts`` (file or hub id), ``out``
    (``.json`` array or ``.jsonl``); optional ``split``, ``format`` (see :func:`load_eval_prompts`),
    ``n`` (1), ``max_new_tokens`` (512), ``temperature`` (0.7; 0 = greedy), ``top_p`` (0.9),
    ``top_k`` (0), ``min_new_tokens`` (0), ``seed`` (42), ``batch_size`` (8 prompts), ``limit``,
    ``reference`` (model for the KL estimate), ``generator`` (name; default the model's folder name),
    ``dataset`` (default: the prompts file name), ``reward_model`` (adds ``reward``),
    ``precision``, ``cache_dir``.

    Writes one record per sample: ``{instruction, output, generator, dataset, kl}`` (+ ``sample``
    when ``n`` > 1, + ``reward`` with a reward model).  ``kl`` is ``null`` without a reference, 0
    when the reference is the model itself.
    """
    import os as _os
    from pathlib import Path

    from . import host
    from .runtime import SpecError, quiet_libraries, resolve_model

    quiet_libraries()
    for key in ("model", "prompts", "out"):
        if not request.get(key):
            raise SpecError(f"generate needs {key}")
    cache_dir = request.get("cache_dir") or _os.environ.get("DPO_SWEEP_CACHE") or str(Path.home() / ".cache" / "dpo-sweep")
    params = SamplingParams.from_request(request, n=1, temperature=0.7, top_p=0.9, max_new_tokens=512, min_new_tokens=0, seed=42)
    items, stats = load_eval_prompts(
        request["prompts"], split=request.get("split") or "train", fmt=request.get("format"), dataset=request.get("dataset"), limit=request.get("limit")
    )
    model_ref = request["model"]
    generator_name = request.get("generator") or default_generator_name(model_ref)
    # The reference and the reward model are used after generation: check now that they exist, so
    # a wrong path fails at once instead of throwing away every generated output.
    if request.get("reference"):
        resolve_model(request["reference"], cache_dir)
    if request.get("reward_model"):
        from .reward import resolve_reward_model

        resolve_reward_model(request["reward_model"], cache_dir)
    gen = Generator(model_ref, cache_dir=cache_dir, precision=request.get("precision") or "auto", model_name=generator_name)
    prompts = [it["prompt"] for it in items]
    started = time.perf_counter()
    totals = {"done": 0, "tokens": 0, "last": 0.0}

    def on_batch(_indices, samples, batch_stats: BatchStats) -> None:
        totals["done"] += len(samples)
        totals["tokens"] += batch_stats.tokens
        now = time.perf_counter()
        if now - totals["last"] >= 1.0 or totals["done"] >= len(prompts):
            totals["last"] = now
            elapsed = max(now - started, 1e-9)
            host.emit({"kind": "rollout-progress", "phase": "eval", "done": totals["done"], "total": len(prompts), "tokens": totals["tokens"], "tokens_per_s": totals["tokens"] / elapsed})

    try:
        samples = gen.generate(prompts, params, batch_size=int(request.get("batch_size") or 8), on_batch=on_batch, should_stop=host.stop_requested)
        if any(g is None for g in samples):
            return {"status": "interrupted", "out": None, "done": sum(g is not None for g in samples), "total": len(prompts)}
        gen_seconds = time.perf_counter() - started
        reference = request.get("reference")
        if reference:
            if resolve_model(reference, cache_dir) == gen.path:
                for group in samples:
                    for s in group:
                        s.kl = 0.0
            else:
                ref_model = load_reference(reference, cache_dir, gen)
                try:
                    add_kl(gen, ref_model, prompts, samples, batch_size=int(request.get("batch_size") or 8) * params.n)
                finally:
                    del ref_model
    finally:
        gen.close()

    records: list[dict] = []
    for item, group in zip(items, samples):
        for j, s in enumerate(group):
            r = {"instruction": item["instruction"], "output": s.text, "generator": generator_name, "dataset": item["dataset"], "kl": s.kl}
            if params.n > 1:
                r["sample"] = j
            records.append(r)
    mean_reward = None
    if request.get("reward_model"):
        from .reward import RewardModel

        rm = RewardModel(request["reward_model"], cache_dir=cache_dir, precision=request.get("precision") or "auto", max_length=request.get("reward_max_length"))
        try:
            flat_prompts = [item["prompt"] for item, group in zip(items, samples) for _ in group]
            scores = rm.score(list(zip(flat_prompts, [r["output"] for r in records])), batch_size=int(request.get("reward_batch_size") or 8))
        finally:
            rm.close()
        for r, v in zip(records, scores):
            r["reward"] = v
        mean_reward = sum(scores) / len(scores) if scores else None
    _write_outputs(request["out"], records)
    kls = [r["kl"] for r in records if r["kl"] is not None]
    tokens = sum(len(s.token_ids) for g in samples for s in g)
    return {
        "status": "complete",
        "out": str(request["out"]),
        "format": stats["format"],
        "prompts": len(items),
        "outputs": len(records),
        "skipped": stats["skipped"],
        "generator": generator_name,
        "mean_kl": sum(kls) / len(kls) if kls else None,
        "mean_reward": mean_reward,
        "tokens": tokens,
        "tokens_per_s": tokens / gen_seconds if gen_seconds > 0 else None,
    }
