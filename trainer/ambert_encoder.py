"""AMBERT's encoder arithmetic, once: word embeddings per granularity, the encoder(s) of a variant, each side's pass.

    class AmbertModel(AmbertBody, nn.Module):            # trainer/model.py; modeling_ambert.py the same way
        def __init__(self, cfg): super().__init__(); self.build_body(cfg); self.apply(lambda m: init_weights(m, std))
    hidden, pooled = self.encode_side("fine", ids, token_type, keep)
Imports torch only (no module of ours): `ambert export --format hf-ambert` copies this file verbatim beside
modeling_ambert.py (trainer/hf_ambert_modeling.py), which imports it, so the exported model runs this very code.
`cfg` is any object with the fields of trainer.config.ModelConfig read here (variant, fine_vocab_size,
coarse_vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position, type_vocab_size, dropout,
attention_dropout, layer_norm_eps; gradient_checkpointing if present). Layout and names follow Hugging Face BertModel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class Embeddings(nn.Module):
    """Position + token type embeddings, LayerNorm and dropout over given word vectors (word tables live apart)."""

    def __init__(self, cfg):
        super().__init__()
        self.position_embeddings = nn.Embedding(cfg.max_position, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, words: torch.Tensor, token_type: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = words + self.position_embeddings(positions) + self.token_type_embeddings(token_type)  # (B, L, H)
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads, self.dropout = cfg.num_heads, cfg.attention_dropout
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:  # keep: (B, 1, 1, L) bool
        B, L, H = x.shape
        q, k, v = (
            t.view(B, L, self.heads, H // self.heads).transpose(1, 2)  # (B, nh, L, hd)
            for t in (self.query(x), self.key(x), self.value(x))
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)
        return y.transpose(1, 2).reshape(B, L, H)


class Layer(nn.Module):
    """Post-LN Transformer layer: x = LN(x + attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, cfg):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.attention_output = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attention_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention_output(self.attention(x, keep))))
        return self.output_norm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))


class Encoder(nn.Module):
    """Embeddings (without the word table) + layers + pooler: a BertModel minus its word embeddings."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        self.gradient_checkpointing = getattr(cfg, "gradient_checkpointing", False)
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(
        self, words: torch.Tensor, token_type: torch.Tensor, keep: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """keep: (B, L) bool, True at real tokens (each attends to all real ones), or (B, 1, L, L) query × key."""
        if positions is None:
            positions = torch.arange(words.shape[1], device=words.device).unsqueeze(0)  # (1, L)
        x = self.embeddings(words, token_type, positions)
        if keep.dim() == 2:
            keep = keep.bool()[:, None, None, :]  # (B, 1, 1, L)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, keep, use_reentrant=False)  # recomputed in backward
            else:
                x = layer(x, keep)
        return x  # (B, L, H)

    def pool(self, hidden_cls: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pooler(hidden_cls))  # (B, H)


def variant_sides(variant: str) -> tuple[str, ...]:
    """The granularities a variant reads: one for bert-fine / bert-coarse, both otherwise."""
    return {"bert-fine": ("fine",), "bert-coarse": ("coarse",)}.get(variant, ("fine", "coarse"))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialization of one module: normal(0, std) weights, zero biases, LayerNorm at identity."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class AmbertBody:
    """Mixin for an nn.Module: word embeddings per granularity (word_embeddings.fine / .coarse) and the encoder(s)
    of the variant: ambert one shared `encoder`, combo `encoders.fine` / `encoders.coarse`, hybrid one `encoder`
    over [fine ; coarse] with positions restarting, bert-fine / bert-coarse one side."""

    def build_body(self, cfg) -> None:
        self.variant = cfg.variant
        self.sides = variant_sides(cfg.variant)
        sizes = {"fine": cfg.fine_vocab_size, "coarse": cfg.coarse_vocab_size}
        self.word_embeddings = nn.ModuleDict({side: nn.Embedding(sizes[side], cfg.hidden_size) for side in self.sides})
        if cfg.variant == "combo":
            self.encoders = nn.ModuleDict({"fine": Encoder(cfg), "coarse": Encoder(cfg)})
        else:
            self.encoder = Encoder(cfg)  # shared by both sides (ambert), joint (hybrid) or single (bert-*)

    def encoder_of(self, side: str) -> Encoder:
        """The encoder that reads `side` (the same module for both sides except in combo)."""
        return self.encoders[side] if self.variant == "combo" else self.encoder

    def encode_side(self, side: str, ids, token_type, keep, pool: bool = True):
        """(hidden states (B, L, H), pooled [CLS] (B, H) or None) of one side on its own encoder pass."""
        encoder = self.encoder_of(side)
        hidden = encoder(self.word_embeddings[side](ids), token_type, keep)
        return hidden, encoder.pool(hidden[:, 0]) if pool else None

    def encode_joint(self, fine, coarse, pool: bool = True):
        """hybrid: one pass over [fine ; coarse] (each (ids, token_type, keep (B, L))), positions restarting at the
        coarse side; (fine hidden, coarse hidden, fine pooled, coarse pooled)."""
        (fine_ids, fine_type, fine_keep), (coarse_ids, coarse_type, coarse_keep) = fine, coarse
        width, device = fine_ids.shape[1], fine_ids.device
        words = torch.cat([self.word_embeddings["fine"](fine_ids), self.word_embeddings["coarse"](coarse_ids)], 1)
        positions = torch.cat([torch.arange(width, device=device), torch.arange(coarse_ids.shape[1], device=device)])
        hidden = self.encoder(
            words,
            torch.cat([fine_type, coarse_type], 1),
            torch.cat([fine_keep, coarse_keep], 1).bool(),
            positions[None],
        )
        pooled = (self.encoder.pool(hidden[:, 0]), self.encoder.pool(hidden[:, width])) if pool else (None, None)
        return hidden[:, :width], hidden[:, width:], *pooled


def covering_coarse(align: torch.Tensor, fine_len: int) -> torch.Tensor:
    """(B, Lc, 2) alignment (fine positions [start, end) under each coarse token) → (B, Lf) index of the coarse token
    covering each fine position (0 at padding)."""
    positions = torch.arange(fine_len, device=align.device)[None, None, :]  # (1, 1, Lf)
    covers = (positions >= align[..., :1]) & (positions < align[..., 1:])  # (B, Lc, Lf)
    return covers.float().argmax(dim=1)  # (B, Lf)


def token_states(fine_hidden, coarse_hidden, align, fine_len: int, heads: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """What span heads read at each of the fine positions: {"fine": its state, "coarse": the state of the coarse
    token covering it, "concat": both (B, Lf, 2H)}, for the sides given (None: not run) and `heads`."""
    states = {}
    if fine_hidden is not None:
        states["fine"] = fine_hidden  # (B, Lf, H)
    if coarse_hidden is not None:
        index = covering_coarse(align, fine_len)  # (B, Lf)
        width = coarse_hidden.shape[-1]
        states["coarse"] = torch.gather(coarse_hidden, 1, index[..., None].expand(-1, -1, width))
    if "concat" in heads:
        states["concat"] = torch.cat([states["fine"], states["coarse"]], dim=-1)
    return states
