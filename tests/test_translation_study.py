"""The translation study: held-out parallel data, per-direction scores and intervals, the shipped tables agreeing with
the shipped hypotheses, metric agreement on a case with a known answer, the plots and the lab widget."""
import json

import numpy as np
import pandas as pd
import pytest

from workbench.plots import translation as P
from workbench.translation import study
from workbench.translation.data import Pair, as_pairs, lang_token, parallel_pairs, sentence_tuples
from workbench.translation.data import test_pairs as held_out_pairs
from workbench.translation.evaluate import corpus_interval, group_scores, score_directions
from workbench.translation.metrics import bleu
from workbench.translation.synthetic import corrupt


@pytest.fixture(scope="module")
def results():
    return study.load_results()


def test_training_pairs_keep_the_low_resource_share_and_the_test_set_is_unseen():
    pairs = parallel_pairs(200, seed=1, low_resource={"tuu": 0.1})
    tuples = sentence_tuples(200, seed=1)
    with_tuu = {p.src for p in pairs if p.src_lang == "tuu"} | {p.tgt for p in pairs if p.tgt_lang == "tuu"}
    share = sum(t["tuu"] in with_tuu for t in tuples) / len(tuples)
    assert 0.05 < share < 0.15                                   # about 10 % of the tuples keep Tuuli
    assert sum("tuu" in (p.src_lang, p.tgt_lang) for p in pairs) < 0.1 * len(pairs)
    test = held_out_pairs(pairs, 10, seed=1)
    seen = {p.src for p in pairs} | {p.tgt for p in pairs}
    assert len(test) == 120 and not any(p.src in seen or p.tgt in seen for p in test)


def test_bad_parallel_input_names_the_record_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match="unknown language code 'xx'; valid: en, vel, kor, tuu"):
        lang_token("xx")
    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps({"src_lang": "en", "tgt_lang": "vel", "src": "A cat.", "tgt": "Ka mil."}) + "\n"
                 + json.dumps({"src_lang": "en", "tgt_lang": "vel", "src": "A dog."}) + "\n")
    with pytest.raises(ValueError, match=r"pairs.jsonl record 2: field\(s\) \['tgt'\] missing"):
        as_pairs(f)
    with pytest.raises(ValueError, match="record 1: src_lang='fr' is not a language"):
        as_pairs([{"src_lang": "fr", "tgt_lang": "en", "src": "x", "tgt": "y"}])
    with pytest.raises(ValueError, match=r"hypotheses and pairs differ in count \(3 vs 2\): pass one hypothesis per pair"):
        score_directions([Pair("en", "vel", "a", "b")] * 2, ["x", "y", "z"])


def test_perfect_translations_score_perfectly_with_a_degenerate_interval():
    pairs = held_out_pairs(parallel_pairs(60, seed=2), 4, seed=2, directions=[("en", "vel"), ("kor", "en")])
    refs = [p.tgt for p in pairs]
    d = score_directions(pairs, refs)
    assert (d.BLEU.round(6) == 100).all() and (d.judge == 1).all() and set(d.attrs["signatures"]) == {
        "BLEU", "spBLEU", "chrF++"}
    g = group_scores(pairs, refs, {"all": lambda p: True}, n_boot=50)
    assert np.allclose(g[["score", "lo", "hi"]].to_numpy()[g.metric != "judge"], 100)
    more = held_out_pairs(parallel_pairs(60, seed=2), 20, seed=2, directions=[("en", "vel")])
    bad = corrupt([p.src for p in more], [p.tgt for p in more], "en", "vel", rate=0.9, seed=0)
    s, lo, hi = corpus_interval("BLEU", bad, [p.tgt for p in more], n_boot=200)
    assert lo <= s <= hi and s < 100


def test_the_shipped_tables_agree_with_the_shipped_hypotheses(results):
    s, d = results["systems"], results["directions"]
    for name in ("mt-moe", "mt-dense"):
        rows = s[s.system == name]
        for (a, b), part in rows.groupby(["src_lang", "tgt_lang"]):
            want = d[(d.system == name) & (d.src_lang == a) & (d.tgt_lang == b)].BLEU.iloc[0]
            assert bleu(part.hyp.tolist(), part.ref.tolist()).score == pytest.approx(want, abs=1e-3)
    sep = results["separation"].query("system == 'mt-moe'")
    assert sep[sep.side == "decoder"].separation.max() > 3 * sep[sep.side == "encoder"].separation.max()
    ab = study.ablation_table(results)
    assert list(ab.system) == ["mt-dense", "mt-moe", "mt-moe-eom", "mt-moe-gd", "mt-moe-eom-gd"]
    assert ab["dropped encoder"].iloc[1:].between(0, 1).all() and np.isnan(ab["dropped encoder"].iloc[0])


def test_agreement_ranks_systems_of_known_order():
    pairs = held_out_pairs(parallel_pairs(60, seed=3), 20, seed=3, directions=[("en", "vel")])
    srcs, refs = [p.src for p in pairs], [p.tgt for p in pairs]
    rows = []
    for k, rate in enumerate((0.0, 0.3, 0.6, 0.9)):
        hyps = refs if rate == 0 else corrupt(srcs, refs, "en", "vel", rate=rate, seed=k)
        rows += [{"system": f"r{rate}", "i": i, "src_lang": "en", "tgt_lang": "vel", "src": s, "ref": r, "hyp": h}
                 for i, (s, r, h) in enumerate(zip(srcs, refs, hyps))]
    table = study.agreement(pd.DataFrame(rows), n_boot=100)
    system = table[(table.level == "system") & (table.method == "spearman")]
    assert (system.value > 0.7).all() and (table.n[table.level == "segment"] == 80).all()


def test_plot_builders_draw_the_study(results):
    assert P.direction_matrix(results["directions"], "mt-moe").data[0].z.shape == (4, 4)
    with pytest.raises(ValueError, match="no rows for system 'nope'"):
        P.direction_matrix(results["directions"], "nope")
    assert len(P.separation_lines(results["separation"]).data) == 4
    assert len(P.ablation_bars(results["groups"]).data) == 2
    fake = pd.DataFrame({"level": ["segment", "system"], "metric": ["BLEU", "BLEU"], "method": ["spearman"] * 2,
                         "value": [0.9, 0.95], "lo": [0.85, 0.9], "hi": [0.95, 1.0]})
    assert len(P.agreement_forest(fake).data) == 2


def test_translation_lab_translates_and_reports_errors():
    from workbench.widgets.translation import translation_lab
    lab = translation_lab()
    assert lab.result["reference"] and 0 <= lab.result["judge"] <= 1 and lab.result["hypothesis"]
    lab.src.value, lab.tgt.value = "kor", "en"
    lab.next_sentence()
    assert lab.result["reference"] and not any(c in lab.result["hypothesis"] for c in "__")
    lab.text.value = " "
    lab.translate()
    assert "source sentence 0 is empty" in lab.table.value
