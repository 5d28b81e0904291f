"""Pretrain and fine-tune small language models with first-order and zeroth-order optimizers, notebook first.

Modules:

- `zer0llm.attention`: Position encodings (RoPE, sinusoidal, learned, ALiBi, none), three attention kinds (standard MHA/GQA/MQA, DeepSeek's multi-head latent attention, native sparse attention) and their KV caches."""

__version__ = "0.0.1"
