"""The full AMBERT as Hugging Face `transformers` code: copied as modeling_ambert.py into an `ambert export
--format hf-ambert` directory, it loads with trust_remote_code and needs only torch and transformers.

    model = AutoModel.from_pretrained(OUT, trust_remote_code=True)         # both embeddings, the encoder(s)
    out = model(input_ids=fine_ids, attention_mask=fine_mask, token_type_ids=fine_type,
                coarse_input_ids=coarse_ids, coarse_attention_mask=coarse_mask, coarse_token_type_ids=coarse_type)
    out.fine_last_hidden_state, out.coarse_last_hidden_state, out.fine_pooler_output, out.coarse_pooler_output
    AutoModelForSequenceClassification.from_pretrained(FT_OUT, trust_remote_code=True)(...).logits  # 3 heads
    AutoModelForMultipleChoice (inputs (B, options, L)), AutoModelForQuestionAnswering (and align=...)
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
from transformers.modeling_outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
)
from transformers.utils import ModelOutput

from .ambert_encoder import AmbertBody, init_weights, token_states


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


class _AmbertWithHeads(AmbertPreTrainedModel):
    """AmbertModel plus one linear head per representation (fine, coarse, concat: as trained), predicting from
    config.prediction_head (concat, or fine = AMBERT-Single, which runs the fine encoder only)."""

    def __init__(self, config, heads, outputs, name):
        super().__init__(config)
        self.ambert = AmbertModel(config)
        hidden = config.hidden_size
        setattr(
            self,
            name,
            nn.ModuleDict({head: nn.Linear(2 * hidden if head == "concat" else hidden, outputs) for head in heads}),
        )
        self._heads_name = name
        self.post_init()

    def _encode(self, inputs):
        """(head, its layer, AmbertModel's output on `inputs`: the six id / mask / type tensors, or None)."""
        heads = getattr(self, self._heads_name)
        head = self.config.prediction_head if self.config.prediction_head in heads else next(iter(heads))
        sides = ("fine", "coarse") if head == "concat" else (head,)
        return head, heads[head], self.ambert(*inputs, sides=sides)


def _sequence_heads(variant):
    if variant in ("ambert", "combo"):
        return ("fine", "coarse", "concat")
    return ("coarse",) if variant == "bert-coarse" else ("fine",)  # hybrid: its first [CLS] is the fine one


class AmbertForSequenceClassification(_AmbertWithHeads):
    """AMBERT's classification (regression: num_labels 1) heads on the pooled [CLS] states."""

    def __init__(self, config, outputs=None):
        super().__init__(config, _sequence_heads(config.variant), outputs or config.num_labels, "classifiers")
        self.dropout = nn.Dropout(config.classifier_dropout)

    def _logits(self, inputs):
        head, layer, out = self._encode(inputs)
        pooled = {"fine": out.fine_pooler_output, "coarse": out.coarse_pooler_output}
        if head == "concat":
            pooled["concat"] = torch.cat([pooled["fine"], pooled["coarse"]], dim=-1)
        return layer(self.dropout(pooled[head]))

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
        inputs = (
            input_ids,
            attention_mask,
            token_type_ids,
            coarse_input_ids,
            coarse_attention_mask,
            coarse_token_type_ids,
        )
        logits = self._logits(inputs)
        if labels is None:
            loss = None
        elif self.config.num_labels == 1:  # regression (STS-B)
            loss = F.mse_loss(logits.squeeze(-1), labels.float())
        else:
            loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class AmbertForMultipleChoice(AmbertForSequenceClassification):
    """One score per (context, question + option) pair: inputs of shape (B, options, L); logits (B, options)."""

    def __init__(self, config):
        super().__init__(config, outputs=1)

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
        inputs = (
            input_ids,
            attention_mask,
            token_type_ids,
            coarse_input_ids,
            coarse_attention_mask,
            coarse_token_type_ids,
        )
        flat = [None if value is None else value.flatten(0, 1) for value in inputs]  # (B × options, L)
        logits = self._logits(flat).view(-1, input_ids.shape[1])
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


class AmbertForQuestionAnswering(_AmbertWithHeads):
    """Start/end logits per fine token from its state, the covering coarse token's state or both (concat; hybrid:
    its joint states). Coarse-reading heads need `align` (B, Lc, 2): the fine positions [start, end) under each
    coarse token, as tokenize_ambert.py gives it. Padding positions get -1e4."""

    def __init__(self, config):
        if config.variant in ("ambert", "combo"):
            heads = ("fine", "coarse", "concat")
        else:
            heads = {"hybrid": ("concat",), "bert-coarse": ("coarse",)}.get(config.variant, ("fine",))
        super().__init__(config, heads, 2, "qa_outputs")

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        coarse_input_ids=None,
        coarse_attention_mask=None,
        coarse_token_type_ids=None,
        align=None,
        start_positions=None,
        end_positions=None,
        **kwargs,
    ):
        inputs = (
            input_ids,
            attention_mask,
            token_type_ids,
            coarse_input_ids,
            coarse_attention_mask,
            coarse_token_type_ids,
        )
        head, layer, out = self._encode(inputs)
        if out.coarse_last_hidden_state is not None and align is None:
            raise ValueError(f"the {head} head reads coarse states: pass align (tokenize_ambert.py gives it)")
        states = token_states(
            out.fine_last_hidden_state, out.coarse_last_hidden_state, align, input_ids.shape[1], (head,)
        )
        padding = (torch.zeros_like(input_ids) if attention_mask is None else attention_mask == 0)[..., None].bool()
        logits = layer(states[head]).masked_fill(padding, -1e4)
        start, end = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end)
