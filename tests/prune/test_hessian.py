"""The Hessian diagonal: exact by batches, sized to the memory there is, through attention."""

import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink.prune import OBD, hessian
from netshrink.prune.hessian import exact_diagonal, plan


def _batches(x, y, size):
    return lambda: [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_exact_diagonal_by_batches_is_the_full_hessian_diagonal():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, 3, (20,))
    weights = {"0.weight": model[0].weight.detach()}

    def loss(flat):
        out = torch.func.functional_call(model, {"0.weight": flat.view(4, 5)}, (x,))
        return F.cross_entropy(out, y)

    full = torch.autograd.functional.hessian(loss, weights["0.weight"].flatten()).diagonal()
    by_batches = exact_diagonal(model, weights, _batches(x, y, 7), F.cross_entropy, chunk=3)
    torch.testing.assert_close(by_batches["0.weight"].flatten(), full)


def test_the_plan_shrinks_batches_and_chunks_to_the_budget():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 8 * 8, 4))
    weights = {n: p.detach() for n, p in model.named_parameters() if n.endswith("weight")}
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 4, (64,))
    roomy = plan(model, weights, x, y, F.cross_entropy, "exact", 1024, budget=2**34)
    tight = plan(model, weights, x, y, F.cross_entropy, "exact", 1024, budget=2**22)
    assert roomy.chunk == hessian.MAX_CHUNK and roomy.batch_size == 1024
    assert tight.batch_size * tight.chunk < roomy.batch_size * roomy.chunk
    assert plan(model, weights, x, y, F.cross_entropy, "exact", 1024, budget=10) is None


def test_obd_with_defaults_fits_a_cnn_and_a_conv1d_net(digits):
    """Models on which OBD's defaults ran out of memory: a CNN of 11.8k weights (Hutchinson
    by size) and a Conv1d net of 2.8k (exact, by batches sized to the free memory)."""
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 64, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, 10))
    x, y = digits.train.tensors[0][:128], digits.train.tensors[1][:128]
    assert sum(p.numel() for p in netshrink.prune.prunable(cnn).values()) > 11_500
    score = OBD(samples=4)
    mask = netshrink.prune_(cnn, score, (x, y), sparsity=0.5)
    assert score.last_method == "hutchinson" and mask.density() == 0.5
    conv1d = nn.Sequential(nn.Conv1d(8, 16, 5, padding=2), nn.ReLU(), nn.Conv1d(16, 32, 3),
                           nn.ReLU(), nn.Flatten(), nn.Linear(32 * 6, 3))
    assert 2_700 < sum(p.numel() for p in netshrink.prune.prunable(conv1d).values()) < 3_100
    score = OBD()
    netshrink.prune_(conv1d, score, (x.reshape(-1, 8, 8), y % 3), sparsity=0.5)
    assert score.last_method == "exact"


def test_obd_and_grasp_differentiate_twice_through_attention():
    torch.manual_seed(0)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.encoder(x).mean(1))

    x, y = torch.randn(24, 5, 8), torch.randint(0, 3, (24,))
    for method, options in (("obd", {"hessian": "exact"}),
                            ("obd", {"hessian": "hutchinson", "samples": 2}),
                            ("grasp", {"samples_per_class": 4})):
        model = Classifier()
        mask = netshrink.prune_(model, method, (x, y), sparsity=0.3, **options)
        assert "encoder.self_attn.in_proj_weight" in mask


def test_the_exact_diagonal_goes_through_an_lstm():
    """oneDNN's LSTM kernel has no forward-mode derivative; the exact diagonal runs without it
    and equals the full Hessian's diagonal."""
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, 4)
            self.rnn = nn.LSTM(4, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            return self.head(self.rnn(torch.tanh(self.proj(x)))[0][:, -1])

    model, x, y = Tagger(), torch.randn(6, 4, 3), torch.randint(0, 2, (6,))
    w = model.proj.weight.detach()
    diag = exact_diagonal(model, {"proj.weight": w}, _batches(x, y, 6), F.cross_entropy)

    def loss(flat):
        out = torch.func.functional_call(model, {"proj.weight": flat.view_as(w)}, (x,))
        return F.cross_entropy(out, y)

    full = torch.autograd.functional.hessian(loss, w.flatten())
    torch.testing.assert_close(diag["proj.weight"].flatten(), full.diagonal())
    assert torch.backends.mkldnn.enabled
