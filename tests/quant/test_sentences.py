"""netshrink.quant.sentences: the fixed evaluation and calibration sentences for MiniLM."""

import pytest

import netshrink
from netshrink.models import minilm
from netshrink.quant.sentences import CALIBRATION, EVALUATION


def test_sentence_sets_are_fixed_disjoint_and_32_to_64_tokens():
    assert len(EVALUATION) >= 64 and len(CALIBRATION) >= 16
    assert not set(EVALUATION) & set(CALIBRATION)
    try:
        counts = minilm.tokenize(EVALUATION + CALIBRATION)["attention_mask"].sum(1)
    except netshrink.NetshrinkError:
        pytest.skip("the MiniLM package is not installed")
    assert int(counts.min()) >= 32 and int(counts.max()) <= 64


def test_sentences_are_distinct_plain_text():
    for sentences in (EVALUATION, CALIBRATION):
        assert isinstance(sentences, tuple) and len(set(sentences)) == len(sentences)
        assert all(isinstance(s, str) and s == s.strip() and "  " not in s for s in sentences)
