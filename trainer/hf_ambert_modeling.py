"""The full AMBERT as Hugging Face `transformers` code: copied as modeling_ambert.py into an `ambert export
--format hf-ambert` directory, it loads with trust_remote_code and needs only torch and transformers.

    model = AutoModel.from_pretrained(OUT, trust_remote_code=True)         # both embeddings, the encoder(s)
    out = model(input_ids=fine_ids, attention_mask=fine_mask, token_type_ids=fine_type,
                coarse_input_ids=coarse_ids, coarse_attention_mask=coarse_mask, coarse_token_type_ids=coarse_type)
    out.fine_last_hidden_state, out.coarse_last_hidden_state, out.fine_pooler_output, out.coarse_pooler_output
    AutoModelForSequenceClassification.from_pretrained(FT_OUT, trust_remote_code=True)(...).logits  # 3 heads
Parameter names and arithmetic are those of trainer/model.py (ambert: one encoder shared by both sides, combo: one
per side, hybrid: one over [fine ; coarse] with positions restarting, bert-fine / bert-coarse: one side); only the
fine side is needed for AMBERT-Single (`sides=("fine",)`). tests/trainer/test_hf_ambert.py holds both to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput


class AmbertConfig(PretrainedConfig):
    model_type = "ambert"

    def __init__(
        self,
        variant="ambert",
        fine_vocab_size=30522,
        coarse_vocab_size=30522,
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        intermediate_size=3072,
        max_position=512,
        type_vocab_size=2,
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        pad_id=0,
        prediction_head="concat",
        classifier_dropout=0.1,
        **kwargs,
    ):
        self.variant, self.fine_vocab_size, self.coarse_vocab_size = variant, fine_vocab_size, coarse_vocab_size
        self.hidden_size, self.num_layers, self.num_heads = hidden_size, num_layers, num_heads
        self.intermediate_size, self.max_position, self.type_vocab_size = (
            intermediate_size,
            max_position,
            type_vocab_size,
        )
        self.dropout, self.attention_dropout, self.layer_norm_eps = dropout, attention_dropout, layer_norm_eps
        self.initializer_range, self.pad_id = initializer_range, pad_id
        self.prediction_head, self.classifier_dropout = prediction_head, classifier_dropout
        super().__init__(pad_token_id=pad_id, **kwargs)


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.position_embeddings = nn.Embedding(cfg.max_position, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, words, token_type, positions):
        return self.dropout(
            self.LayerNorm(words + self.position_embeddings(positions) + self.token_type_embeddings(token_type))
        )


class SelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads, self.dropout = cfg.num_heads, cfg.attention_dropout
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x, keep):
        B, L, H = x.shape
        q, k, v = (
            t.view(B, L, self.heads, H // self.heads).transpose(1, 2)
            for t in (self.query(x), self.key(x), self.value(x))
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)
        return y.transpose(1, 2).reshape(B, L, H)


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.attention_output = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attention_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, keep):
        x = self.attention_norm(x + self.dropout(self.attention_output(self.attention(x, keep))))
        return self.output_norm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, words, token_type, mask, positions=None):
        if positions is None:
            positions = torch.arange(words.shape[1], device=words.device).unsqueeze(0)
        x = self.embeddings(words, token_type, positions)
        keep = mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, keep)
        return x

    def pool(self, hidden_cls):
        return torch.tanh(self.pooler(hidden_cls))


@dataclass
class AmbertOutput(ModelOutput):
    fine_last_hidden_state: torch.Tensor | None = None
    coarse_last_hidden_state: torch.Tensor | None = None
    fine_pooler_output: torch.Tensor | None = None
    coarse_pooler_output: torch.Tensor | None = None


class AmbertPreTrainedModel(PreTrainedModel):
    config_class = AmbertConfig
    base_model_prefix = "ambert"

    def _init_weights(self, module):
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class AmbertModel(AmbertPreTrainedModel):
    """Both word embeddings and the encoder(s); outputs both sides' hidden states and pooled [CLS]."""

    def __init__(self, config):
        super().__init__(config)
        variant = config.variant
        self.sides = {"bert-fine": ("fine",), "bert-coarse": ("coarse",)}.get(variant, ("fine", "coarse"))
        sizes = {"fine": config.fine_vocab_size, "coarse": config.coarse_vocab_size}
        self.word_embeddings = nn.ModuleDict(
            {side: nn.Embedding(sizes[side], config.hidden_size) for side in self.sides}
        )
        if variant == "combo":
            self.encoders = nn.ModuleDict({"fine": Encoder(config), "coarse": Encoder(config)})
        else:
            self.encoder = Encoder(config)
        self.post_init()

    def encoder_of(self, side):
        return self.encoders[side] if self.config.variant == "combo" else self.encoder

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        coarse_input_ids=None,
        coarse_attention_mask=None,
        coarse_token_type_ids=None,
        sides=("fine", "coarse"),
        **kwargs,
    ):
        inputs = {
            "fine": (input_ids, token_type_ids, attention_mask),
            "coarse": (coarse_input_ids, coarse_token_type_ids, coarse_attention_mask),
        }
        for side, (ids, types, mask) in inputs.items():
            if ids is not None:
                inputs[side] = (
                    ids,
                    torch.zeros_like(ids) if types is None else types,
                    torch.ones_like(ids) if mask is None else mask,
                )
        out = AmbertOutput()
        if self.config.variant == "hybrid":
            (fine_ids, fine_type, fine_mask), (coarse_ids, coarse_type, coarse_mask) = inputs["fine"], inputs["coarse"]
            Lf = fine_ids.shape[1]
            words = torch.cat([self.word_embeddings["fine"](fine_ids), self.word_embeddings["coarse"](coarse_ids)], 1)
            positions = torch.cat(
                [torch.arange(Lf, device=fine_ids.device), torch.arange(coarse_ids.shape[1], device=fine_ids.device)]
            ).unsqueeze(0)
            hidden = self.encoder(
                words, torch.cat([fine_type, coarse_type], 1), torch.cat([fine_mask, coarse_mask], 1), positions
            )
            out.fine_last_hidden_state, out.coarse_last_hidden_state = hidden[:, :Lf], hidden[:, Lf:]
            out.fine_pooler_output, out.coarse_pooler_output = (
                self.encoder.pool(hidden[:, 0]),
                self.encoder.pool(hidden[:, Lf]),
            )
            return out
        for side in [side for side in sides if side in self.sides and inputs[side][0] is not None]:
            ids, types, mask = inputs[side]
            encoder = self.encoder_of(side)
            hidden = encoder(self.word_embeddings[side](ids), types, mask)
            out[f"{side}_last_hidden_state"] = hidden
            out[f"{side}_pooler_output"] = encoder.pool(hidden[:, 0])
        return out


class AmbertForSequenceClassification(AmbertPreTrainedModel):
    """AMBERT's classification heads: fine, coarse and their concatenation (two-sided variants) or the one side;
    logits from config.prediction_head (concat; fine = AMBERT-Single, which runs the fine encoder only)."""

    def __init__(self, config):
        super().__init__(config)
        self.ambert = AmbertModel(config)
        variant = config.variant
        if variant in ("ambert", "combo"):
            heads = ("fine", "coarse", "concat")
        else:
            heads = ("coarse",) if variant == "bert-coarse" else ("fine",)
        hidden = config.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifiers = nn.ModuleDict(
            {head: nn.Linear(2 * hidden if head == "concat" else hidden, config.num_labels) for head in heads}
        )
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        coarse_input_ids=None,
        coarse_attention_mask=None,
        coarse_token_type_ids=None,
        labels=None,
        **kwargs,
    ):
        head = (
            self.config.prediction_head
            if self.config.prediction_head in self.classifiers
            else next(iter(self.classifiers))
        )
        sides = ("fine", "coarse") if head == "concat" else (head,)
        out = self.ambert(
            input_ids,
            attention_mask,
            token_type_ids,
            coarse_input_ids,
            coarse_attention_mask,
            coarse_token_type_ids,
            sides=sides,
        )
        pooled = {"fine": out.fine_pooler_output, "coarse": out.coarse_pooler_output}
        if head == "concat":
            pooled["concat"] = torch.cat([pooled["fine"], pooled["coarse"]], dim=-1)
        logits = self.classifiers[head](self.dropout(pooled[head]))
        if labels is None:
            loss = None
        elif self.config.num_labels == 1:  # regression (STS-B)
            loss = F.mse_loss(logits.squeeze(-1), labels.float())
        else:
            loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
