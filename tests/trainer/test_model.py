"""AmbertModel: every variant's shapes and losses, logits at masked positions only, AMBERT-Single, padding invariance,
parameter groups, BERT init, torch.compile and bf16 autocast. Tiny models on random batches from `random_batch`."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.batch import IGNORE, MaskedBatch
from trainer.config import VARIANTS, ModelConfig
from trainer.masking import with_mlm_targets, with_packing
from trainer.model import AmbertModel, parameter_groups

CLS, MASK = 2, 4
BUDGET = 16  # MLM slots per row: more than the longest random row, so nothing is capped


TINY = {
    "fine_vocab_size": 50,
    "coarse_vocab_size": 70,
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 64,
}


def tiny_config(variant: str = "ambert", **changes) -> ModelConfig:
    return ModelConfig(variant=variant, **{**TINY, **changes})


def tiny_model(variant: str = "ambert", seed: int = 0, **changes) -> AmbertModel:
    torch.manual_seed(seed)
    return AmbertModel(tiny_config(variant, **changes))


def random_batch(
    cfg: ModelConfig,
    batch_size: int = 3,
    fine_len: int = 12,
    coarse_len: int = 9,
    seed: int = 0,
    mask_share: float = 0.3,
) -> MaskedBatch:
    """Rows of random length (the first one full) with [CLS] first, some [MASK]ed positions (always position 1)
    and NSP labels with one unlabelled example. The model does not read `align`: it is left at zeros."""
    g = torch.Generator().manual_seed(seed)

    def side(length: int, vocab_size: int):
        lengths = torch.randint(2, length + 1, (batch_size,), generator=g)
        lengths[0] = length
        positions = torch.arange(length)[None, :]  # (1, L)
        mask = positions < lengths[:, None]  # (B, L)
        ids = torch.randint(5, vocab_size, (batch_size, length), generator=g).masked_fill(~mask, cfg.pad_id)
        ids[:, 0] = CLS
        types = ((positions >= lengths[:, None] // 2) & mask).long()
        chosen = (torch.rand(batch_size, length, generator=g) < mask_share) & mask
        chosen[:, 0], chosen[:, 1] = False, True
        labels = torch.where(chosen, ids, IGNORE)
        return ids.masked_fill(chosen, MASK), types, mask, labels

    fine, coarse = side(fine_len, cfg.fine_vocab_size), side(coarse_len, cfg.coarse_vocab_size)
    nsp_labels = torch.randint(0, 2, (batch_size,), generator=g)
    nsp_labels[-1] = IGNORE
    batch = MaskedBatch(
        *fine,
        *coarse,
        align=torch.zeros(batch_size, coarse_len, 2, dtype=torch.long),
        nsp_labels=nsp_labels,
        keys=[f"k{i}" for i in range(batch_size)],
    )
    return with_mlm_targets(batch, BUDGET)


def relabelled(batch: MaskedBatch, **labels) -> MaskedBatch:
    """`batch` with other dense labels and the MLM targets rebuilt from them."""
    return with_mlm_targets(dataclasses.replace(batch, **labels), BUDGET)


def encode(model: AmbertModel, batch: MaskedBatch, sides=("fine", "coarse")):
    return model.encode(
        batch.fine_ids,
        batch.fine_type,
        batch.fine_mask,
        batch.coarse_ids,
        batch.coarse_type,
        batch.coarse_mask,
        sides=sides,
    )


def sides_of(variant: str) -> tuple[str, ...]:
    return {"bert-fine": ("fine",), "bert-coarse": ("coarse",)}.get(variant, ("fine", "coarse"))


@pytest.mark.parametrize("nsp", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_gives_shapes_a_finite_loss_and_gradients(variant, nsp):
    model = tiny_model(variant, nsp=nsp)
    batch = random_batch(model.cfg)
    enc = encode(model, batch)
    for side, length in (("fine", 12), ("coarse", 9)):
        hidden, pooled = getattr(enc, f"{side}_hidden"), getattr(enc, f"{side}_pooled")
        if side in sides_of(variant):
            assert hidden.shape == (3, length, 32) and pooled.shape == (3, 32)
        else:
            assert hidden is None and pooled is None

    out = model(batch)
    assert torch.isfinite(out.loss) and out.loss.shape == ()
    parts = [loss for loss in (out.fine_loss, out.coarse_loss, out.nsp_loss) if loss is not None]
    assert torch.allclose(out.loss, sum(parts))
    assert (out.nsp_loss is not None) == nsp
    for side in ("fine", "coarse"):
        present = side in sides_of(variant)
        assert (getattr(out, f"{side}_loss") is not None) == present
        count, correct = getattr(out, f"{side}_count"), getattr(out, f"{side}_correct")
        expected = int((getattr(batch, f"{side}_labels") != IGNORE).sum()) if present else 0
        assert count.dtype == correct.dtype == torch.long and not count.requires_grad
        assert int(count) == expected and 0 <= int(correct) <= expected

    out.loss.backward()
    missing = {name for name, p in model.named_parameters() if p.grad is None}
    # The pooler feeds only the NSP head; with NSP every parameter of the variant is trained.
    assert missing == (set() if nsp else {name for name, _ in model.named_parameters() if ".pooler." in name})
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_ambert_loss_decreases_over_adam_steps_on_a_fixed_batch():
    model = tiny_model("ambert", nsp=True)
    batch = random_batch(model.cfg, batch_size=4, seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_from_masked_positions_equals_the_full_vocabulary_reference(variant):
    model = tiny_model(variant, nsp=True).eval()
    batch = random_batch(model.cfg, seed=1)
    with torch.no_grad():
        out, enc = model(batch), encode(model, batch)
        for side in sides_of(variant):
            labels = getattr(batch, f"{side}_labels")
            logits = model.mlm_heads[side](getattr(enc, f"{side}_hidden"))  # (B, L, V) at every position
            reference = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
            assert torch.allclose(getattr(out, f"{side}_loss"), reference, rtol=0, atol=1e-6)
            hits = (logits.argmax(-1) == labels)[labels != IGNORE].sum()
            assert int(getattr(out, f"{side}_correct")) == int(hits)
        if variant in ("ambert", "combo"):
            pooled = torch.cat([enc.fine_pooled, enc.coarse_pooled], -1)
        else:
            pooled = enc.coarse_pooled if variant == "bert-coarse" else enc.fine_pooled
        nsp_reference = F.cross_entropy(model.nsp_head(pooled)[:-1], batch.nsp_labels[:-1])  # the last is IGNORE
        assert torch.allclose(out.nsp_loss, nsp_reference, rtol=0, atol=1e-6)


def test_a_side_without_masked_positions_adds_zero_and_no_nan():
    model = tiny_model("ambert", nsp=True)
    batch = random_batch(model.cfg, seed=2)
    no_fine = relabelled(batch, fine_labels=torch.full_like(batch.fine_labels, IGNORE))
    out = model(no_fine)
    assert out.fine_loss.item() == 0.0 and int(out.fine_count) == 0 and int(out.fine_correct) == 0
    assert torch.allclose(out.loss, out.coarse_loss + out.nsp_loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    nothing = relabelled(
        no_fine,
        coarse_labels=torch.full_like(batch.coarse_labels, IGNORE),
        nsp_labels=torch.full_like(batch.nsp_labels, IGNORE),
    )
    assert model(nothing).loss.item() == 0.0


def test_ambert_single_fine_encode_equals_the_fine_part_of_the_two_sided_one():
    model = tiny_model("ambert").eval()
    batch = random_batch(model.cfg, fine_len=7, coarse_len=11, seed=4)  # coarse longer: fine is padded in the stack
    with torch.no_grad():
        both = encode(model, batch)
        single = model.encode(batch.fine_ids, batch.fine_type, batch.fine_mask, None, None, None, sides=("fine",))
    assert single.coarse_hidden is None and single.coarse_pooled is None
    assert single.fine_hidden.shape == (3, 7, 32)
    real = batch.fine_mask
    assert torch.allclose(single.fine_hidden[real], both.fine_hidden[real], atol=1e-6)
    assert torch.allclose(single.fine_pooled, both.fine_pooled, atol=1e-6)


def test_hybrid_hidden_states_read_the_other_granularity_and_ambert_ones_do_not():
    batch = random_batch(tiny_config(), seed=5)
    other_coarse = dataclasses.replace(batch, coarse_ids=torch.where(batch.coarse_mask, 7, batch.coarse_ids))
    with torch.no_grad():
        for variant, interacts in (("hybrid", True), ("ambert", False), ("combo", False)):
            model = tiny_model(variant).eval()
            changed = ~torch.isclose(encode(model, batch).fine_hidden, encode(model, other_coarse).fine_hidden)
            assert bool(changed[batch.fine_mask].any()) == interacts, variant


def test_ambert_shares_one_encoder_and_combo_has_two():
    batch = random_batch(tiny_config(coarse_vocab_size=50), seed=6)
    same_tokens = dataclasses.replace(
        batch, coarse_ids=batch.fine_ids, coarse_type=batch.fine_type, coarse_mask=batch.fine_mask
    )
    with torch.no_grad():
        for variant, shared in (("ambert", True), ("combo", False)):
            model = tiny_model(variant, coarse_vocab_size=50).eval()
            model.word_embeddings["coarse"].weight.copy_(model.word_embeddings["fine"].weight)
            enc = encode(model, same_tokens)
            real = batch.fine_mask  # hidden states at padding positions are not defined
            assert torch.allclose(enc.fine_hidden[real], enc.coarse_hidden[real], atol=1e-6) == shared, variant


MODELS = {variant: tiny_model(variant, seed=7).eval() for variant in VARIANTS}


@settings(max_examples=25, deadline=None)
@given(
    variant=st.sampled_from(VARIANTS),
    fine_pad=st.integers(0, 6),
    coarse_pad=st.integers(0, 6),
    seed=st.integers(0, 1000),
)
def test_hidden_states_of_real_tokens_ignore_extra_padding(variant, fine_pad, coarse_pad, seed):
    """Also checks hybrid's coarse positions restart at 0: padding the fine part must not move them."""
    model = MODELS[variant]
    batch = random_batch(model.cfg, seed=seed)

    def padded(t: torch.Tensor, extra: int, value) -> torch.Tensor:
        return F.pad(t, (0, extra), value=value)

    longer = dataclasses.replace(
        batch,
        fine_ids=padded(batch.fine_ids, fine_pad, 0),
        fine_type=padded(batch.fine_type, fine_pad, 0),
        fine_mask=padded(batch.fine_mask, fine_pad, False),
        coarse_ids=padded(batch.coarse_ids, coarse_pad, 0),
        coarse_type=padded(batch.coarse_type, coarse_pad, 0),
        coarse_mask=padded(batch.coarse_mask, coarse_pad, False),
    )
    with torch.no_grad():
        short, long = encode(model, batch), encode(model, longer)
    for side in sides_of(variant):
        real = getattr(batch, f"{side}_mask")
        a, b = getattr(short, f"{side}_hidden"), getattr(long, f"{side}_hidden")
        assert torch.allclose(a[real], b[:, : a.shape[1]][real], atol=1e-5)
        assert torch.allclose(getattr(short, f"{side}_pooled"), getattr(long, f"{side}_pooled"), atol=1e-5)


def test_dropout_is_active_only_in_training():
    model = tiny_model("ambert", dropout=0.5, attention_dropout=0.5)
    batch = random_batch(model.cfg)
    with torch.no_grad():
        model.train()
        assert not torch.equal(encode(model, batch).fine_hidden, encode(model, batch).fine_hidden)
        model.eval()
        assert torch.equal(encode(model, batch).fine_hidden, encode(model, batch).fine_hidden)


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_groups_exempt_exactly_biases_and_layernorm_weights(variant):
    model = tiny_model(variant, nsp=True)
    decay, no_decay = parameter_groups(model, weight_decay=0.01)
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
    names = {id(p): name for name, p in model.named_parameters()}
    norm_weights = {
        f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.LayerNorm)
    }
    exempt = {name for name in names.values() if name.endswith(".bias") or name in norm_weights}
    assert {names[id(p)] for p in no_decay["params"]} == exempt
    assert sorted(names[id(p)] for p in decay["params"] + no_decay["params"]) == sorted(names.values())
    assert {f"word_embeddings.{side}.weight" for side in sides_of(variant)} <= {names[id(p)] for p in decay["params"]}
    assert any(name.endswith("position_embeddings.weight") for name in {names[id(p)] for p in decay["params"]})


def test_init_is_bert_like_and_deterministic_given_the_seed():
    model = tiny_model("combo", seed=11, nsp=True)
    again, other = tiny_model("combo", seed=11, nsp=True), tiny_model("combo", seed=12, nsp=True)
    state, same, different = model.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[name], same[name]) for name in state)
    assert not torch.equal(
        state["encoders.fine.layers.0.intermediate.weight"], different["encoders.fine.layers.0.intermediate.weight"]
    )
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight)), name
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            assert not parameter.any(), name
    weights = torch.cat(
        [m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Linear | torch.nn.Embedding)]
    )
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_whole_training_forward_compiles_fullgraph_once_per_shape(variant):
    """torch.compile(model, fullgraph=True, dynamic=False): embeddings → encoder → MLM heads → loss with no graph
    break (fullgraph raises on one), one graph per batch shape, losses and gradients equal to eager. Dynamo alone
    (backend eager) for the variants, with AOT autograd (aot_eager) for ambert; inductor runs in test_train."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = tiny_model(variant, nsp=True, dropout=0.0, attention_dropout=0.0)
    backend = "aot_eager" if variant == "ambert" else "eager"
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend=backend)
    shapes = [(12, 9, 8), (12, 9, 8), (16, 12, 8), (12, 9, 8)]  # (fine, coarse, packed rows): two shapes
    for index, (fine_len, coarse_len, rows) in enumerate(shapes):
        batch = random_batch(model.cfg, batch_size=4, fine_len=fine_len, coarse_len=coarse_len, seed=index)
        batch = with_packing(batch, 2 * fine_len if variant == "hybrid" else fine_len, variant == "hybrid", rows)
        eager = model(batch)
        eager_grads = torch.autograd.grad(eager.loss, list(model.parameters()), allow_unused=True)
        traced = compiled(batch)
        traced_grads = torch.autograd.grad(traced.loss, list(model.parameters()), allow_unused=True)
        assert torch.allclose(eager.loss, traced.loss, atol=1e-5)
        for ours, theirs in zip(eager_grads, traced_grads, strict=True):
            assert (ours is None) == (theirs is None) and (ours is None or torch.allclose(ours, theirs, atol=1e-5))
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])


def test_packed_rows_equal_each_side_encoded_alone_at_any_row_length():
    """ambert's one pass over packed [fine ; coarse] rows gives each side's encoding alone (no attention across),
    whatever padding the row has."""
    model = tiny_model("ambert", nsp=True).eval()
    batch = random_batch(model.cfg, seed=9)
    with torch.no_grad():
        alone = {
            side: model.encode(*(getattr(batch, f"{side}_{part}") for part in ("ids", "type", "mask")), sides=(side,))
            if side == "fine"
            else model.encode(None, None, None, batch.coarse_ids, batch.coarse_type, batch.coarse_mask, sides=(side,))
            for side in ("fine", "coarse")
        }
        for row_len, rows in ((None, None), (12, 6), (30, 4), (64, 9)):
            both = (
                encode(model, batch)
                if row_len is None
                else model.encode(
                    batch.fine_ids,
                    batch.fine_type,
                    batch.fine_mask,
                    batch.coarse_ids,
                    batch.coarse_type,
                    batch.coarse_mask,
                    plan=with_packing(batch, row_len, joint=False, rows=rows).packing_plan(),
                )
            )
            for side in ("fine", "coarse"):
                real = getattr(batch, f"{side}_mask")
                own = getattr(alone[side], f"{side}_hidden")
                assert torch.allclose(getattr(both, f"{side}_hidden")[real], own[real], atol=1e-5), (side, row_len)
                assert torch.allclose(
                    getattr(both, f"{side}_pooled"), getattr(alone[side], f"{side}_pooled"), atol=1e-5
                )


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    batch = random_batch(tiny_config(), seed=10)
    results = []
    for checkpointing in (False, True):
        model = tiny_model(
            "ambert", seed=3, nsp=True, dropout=0.0, attention_dropout=0.0, gradient_checkpointing=checkpointing
        )
        loss = model(batch).loss
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters()]))
    (loss, grads), (checkpointed_loss, checkpointed_grads) = results
    assert torch.equal(loss, checkpointed_loss)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, checkpointed_grads, strict=True))


def test_training_runs_under_bf16_autocast_close_to_fp32():
    model = tiny_model("ambert", nsp=True, dropout=0.0, attention_dropout=0.0)
    batch = random_batch(model.cfg, seed=8)
    fp32 = model(batch).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert abs(out.loss.item() - fp32.item()) < 0.05 * fp32.item()
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
