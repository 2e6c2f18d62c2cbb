import pytest
import torch

from netshrink import quality
from netshrink.errors import NetshrinkError


def _embeddings(n=60, d=16, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_a_perfect_copy_scores_one_everywhere():
    e = _embeddings()
    a = quality.agreement(e, e.clone() * 3.0)  # scale does not change any cosine
    assert a.cosine_mean == pytest.approx(1.0) and a.cosine_p5 == pytest.approx(1.0)
    assert a.neighbours == 1.0 and a.spearman == pytest.approx(1.0)


def test_noise_lowers_every_figure_and_p5_is_below_the_mean():
    e = _embeddings()
    noisy = e + 0.8 * _embeddings(seed=1)
    a = quality.agreement(e, noisy)
    assert a.cosine_p5 < a.cosine_mean < 1.0
    assert a.neighbours < 1.0 and a.spearman < 1.0


def test_neighbour_overlap_counts_shared_neighbours():
    # four points on a line: each one's nearest neighbour (k=1) is known
    ref = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    same = quality.neighbour_overlap(ref, ref, k=1)
    swapped = quality.neighbour_overlap(ref, ref[[0, 2, 1, 3]], k=1)
    assert same == 1.0
    assert swapped == 0.0  # every row now has the other pair's member as its neighbour


def test_spearman_equals_scipys_on_the_pairwise_similarities():
    stats = pytest.importorskip("scipy.stats")
    e, f = _embeddings(30), _embeddings(30) + _embeddings(30, seed=2)
    rows, cols = torch.triu_indices(30, 30, offset=1)
    expected = stats.spearmanr(quality.similarities(e)[rows, cols],
                               quality.similarities(f)[rows, cols]).statistic
    assert quality.spearman(e, f) == pytest.approx(expected, abs=1e-9)


def test_bad_shapes_and_too_few_sentences_are_refused():
    with pytest.raises(NetshrinkError, match="one shape"):
        quality.agreement(_embeddings(), _embeddings(d=8))
    with pytest.raises(NetshrinkError, match="more than 10"):
        quality.agreement(_embeddings(5), _embeddings(5))
