"""The full AMBERT as Hugging Face `transformers` code: copied as modeling_ambert.py into an `ambert export
--format hf-ambert` directory, it loads with trust_remote_code and needs only torch and transformers.

    model = AutoModel.from_pretrained(OUT, trust_remote_code=True)         # both embeddings, the encoder(s)
    out = model(input_ids=fine_ids, attention_mask=fine_mask, token_type_ids=fine_type,
                coarse_input_ids=coarse_ids, coarse_attention_mask=coarse_mask, coarse_token_type_ids=coarse_type)
    out.fine_last_hidden_state, out.coarse_last_hidden_state, out.fine_pooler_output, out.coarse_pooler_output
    AutoModelForSequenceClassification.from_pretrained(FT_OUT, trust_remote_code=True)(...).logits  # 3 heads
The encoder arithmetic and parameter names are ambert_encoder.py's (trainer/ambert_encoder.py, which
trainer/model.py runs too; ambert: one encoder shared by both sides, combo: one per side, hybrid: one over
[fine ; coarse] with positions restarting, bert-fine / bert-coarse: one side); only the fine side is needed for
AMBERT-Single (`sides=("fine",)`). tests/trainer/test_hf_ambert.py holds both to 1e-5. Input ids: tokenize_ambert.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .ambert_encoder import AmbertBody, init_weights


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
        init_weights(module, self.config.initializer_range)


class AmbertModel(AmbertBody, AmbertPreTrainedModel):
    """Both word embeddings and the encoder(s) (ambert_encoder.AmbertBody); outputs both sides' hidden states and
    pooled [CLS]."""

    def __init__(self, config):
        super().__init__(config)
        self.build_body(config)
        self.post_init()

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
                    (torch.ones_like(ids) if mask is None else mask).bool(),
                )
        out = AmbertOutput()
        if self.config.variant == "hybrid":
            (
                out.fine_last_hidden_state,
                out.coarse_last_hidden_state,
                out.fine_pooler_output,
                out.coarse_pooler_output,
            ) = self.encode_joint(inputs["fine"], inputs["coarse"])
            return out
        for side in [side for side in sides if side in self.sides and inputs[side][0] is not None]:
            out[f"{side}_last_hidden_state"], out[f"{side}_pooler_output"] = self.encode_side(side, *inputs[side])
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
