import pytest
import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.observers import make_observer
from netshrink.quant.scheme import Scheme, choose_qparams, dequantize, quantize


def _mse(x, scale, zero_point, scheme):
    return float((dequantize(quantize(x, scale, zero_point, scheme), scale, zero_point) - x)
                 .pow(2).mean())


def test_minmax_covers_everything_seen():
    obs = make_observer("minmax", Scheme(8, False))
    obs.update(torch.tensor([0.5, 2.0]))
    obs.update(torch.tensor([-1.0, 1.0]))
    lo, hi = obs.range()
    assert float(lo) == -1.0 and float(hi) == 2.0
    scale, _ = obs.qparams()
    assert float(scale) == pytest.approx(3 / 255)


def test_moving_average_follows_batches_slowly():
    obs = make_observer("moving_average", Scheme(8, False), averaging=0.5)
    obs.update(torch.tensor([0.0, 4.0]))
    obs.update(torch.tensor([0.0, 2.0]))
    assert float(obs.range()[1]) == pytest.approx(3.0)


def test_per_channel_minmax_has_one_range_per_output_channel():
    obs = make_observer("minmax", Scheme(8, True, "channel"))
    w = torch.tensor([[1.0, -2.0], [0.1, 0.05]])
    obs.update(w)
    scale, zero_point = obs.qparams()
    assert scale.shape == (2,) and torch.allclose(scale, torch.tensor([2 / 127, 0.1 / 127]))
    assert torch.equal(zero_point, torch.zeros(2))


def _heavy_tailed(n=50_000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g)
    x[:20] = 40.0  # a few outliers stretch the min-max range
    return x


@pytest.mark.parametrize("name", ["percentile", "mse"])
def test_clipping_observers_beat_minmax_on_heavy_tailed_data(name):
    scheme = Scheme(4, symmetric=True)
    x = _heavy_tailed()
    minmax = make_observer("minmax", scheme)
    clipping = make_observer(name, scheme, **({"percentile": 99.9} if name == "percentile"
                                              else {}))
    for chunk in x.split(10_000):
        minmax.update(chunk)
        clipping.update(chunk)
    assert float(clipping.range()[1]) < float(minmax.range()[1]) / 4
    inliers = x[20:]  # the bulk of the values gets a much finer step
    assert _mse(inliers, *clipping.qparams(), scheme) < 0.2 * _mse(inliers, *minmax.qparams(),
                                                                   scheme)
    if name == "mse":  # and the MSE observer also wins on everything, outliers included
        assert _mse(x, *clipping.qparams(), scheme) < _mse(x, *minmax.qparams(), scheme)


def test_mse_observer_keeps_the_full_range_when_clipping_does_not_pay():
    scheme = Scheme(8, symmetric=False)
    x = torch.linspace(0, 1, 10_001)  # uniform: clipping only adds error
    obs = make_observer("mse", scheme)
    obs.update(x)
    assert float(obs.range()[1]) > 0.97


def test_sampled_observers_are_reproducible():
    x = _heavy_tailed(300_000)
    ranges = []
    for _ in range(2):
        obs = make_observer("percentile", Scheme(8, True), max_samples=1000, seed=3)
        for chunk in x.split(100_000):
            obs.update(chunk)
        ranges.append(obs.range())
    assert torch.equal(ranges[0][1], ranges[1][1])


def test_observer_errors_are_clear():
    with pytest.raises(NetshrinkError, match="observer="):
        make_observer("kl", Scheme())
    with pytest.raises(NetshrinkError, match="empty"):
        make_observer("minmax", Scheme()).update(torch.empty(0))
    with pytest.raises(NetshrinkError, match="no data"):
        make_observer("mse", Scheme()).qparams()
    with pytest.raises(NetshrinkError, match="row"):
        make_observer("minmax", Scheme(8, False, "row"))


def test_choose_qparams_matches_the_observed_range():
    scheme = Scheme(8, False)
    _, zero_point = choose_qparams(torch.tensor(-1.0), torch.tensor(3.0), scheme)
    assert float(zero_point) == round(1 / (4 / 255))
