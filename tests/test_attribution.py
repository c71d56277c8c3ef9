"""captum attributions: IG completeness, feature ablation equals manual ablation, targets, bad input."""
import numpy as np
import pytest

pytest.importorskip("captum")

from workbench.probes import attribution as AT  # noqa: E402

PROMPT = "Lily gave Max the red"


def test_integrated_gradients_completeness(tiny_dense, tiny_tok):
    rec = AT.integrated_gradients(tiny_dense, tiny_tok, PROMPT, target=" ball", n_steps=64)
    total, diff = rec.completeness()
    assert abs(total - diff) < 0.02 * abs(diff) + 2e-3, (total, diff)
    assert abs(rec.delta) < 0.02 * abs(diff) + 2e-3
    assert rec.token_attr.shape == (len(rec.target_tokens), len(rec.input_tokens))
    assert rec.token_attr[:, 0].tolist() == [0.0] * len(rec.target_tokens)      # BOS held fixed


def test_moe_reports_its_completeness_gap(tiny_moe, tiny_tok):
    # top-k routing makes f discontinuous along the IG path, so the gap can be large: it must be reported
    rec = AT.integrated_gradients(tiny_moe, tiny_tok, PROMPT, target=" ball", n_steps=4)
    total, diff = rec.completeness()
    assert rec.delta == pytest.approx(total - diff, abs=1e-3)


def test_feature_ablation_equals_manual_ablation(tiny_dense, tiny_tok):
    rec = AT.feature_ablation(tiny_dense, tiny_tok, PROMPT, target=" ball")
    ids = [tiny_tok.bos_token_id] + tiny_tok(PROMPT, add_special_tokens=False)["input_ids"]
    tgt = tiny_tok(" ball", add_special_tokens=False)["input_ids"]
    full = AT.target_logprobs(tiny_dense, ids, tgt)
    for i in (1, len(ids) - 1):
        ablated = list(ids)
        ablated[i] = tiny_tok.pad_token_id
        want = full - AT.target_logprobs(tiny_dense, ablated, tgt)
        np.testing.assert_allclose(rec.token_attr[:, i], want, atol=1e-4)
    np.testing.assert_allclose(rec.target_logprob, full, atol=1e-5)


def test_default_target_is_greedy_next_token(tiny_dense, tiny_tok):
    rec = AT.integrated_gradients(tiny_dense, tiny_tok, PROMPT, n_steps=8)
    ids = [tiny_tok.bos_token_id] + tiny_tok(PROMPT, add_special_tokens=False)["input_ids"]
    assert len(rec.target_tokens) == 1
    assert rec.target_tokens[0] == tiny_tok.decode(AT.next_token_target(tiny_dense, ids))


def test_bad_attribution_input(tiny_dense, tiny_tok):
    with pytest.raises(ValueError, match="empty"):
        AT.integrated_gradients(tiny_dense, tiny_tok, "", n_steps=4)
    with pytest.raises(ValueError, match="target text is empty"):
        AT.feature_ablation(tiny_dense, tiny_tok, PROMPT, target="")
    with pytest.raises(ValueError, match="unknown attribution method"):
        AT.attribute_ids(tiny_dense, tiny_tok, [1, 5], [6], method="saliency")
