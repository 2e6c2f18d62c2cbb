"""ProjectedAttention computes exactly what nn.MultiheadAttention computes."""

import itertools

import pytest
import torch
from torch import nn

from netshrink.core.attention import decompose


def _pair(batch_first=True, kdim=None, vdim=None, bias=True, add_bias_kv=False,
          add_zero_attn=False):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, bias=bias, add_bias_kv=add_bias_kv,
                                add_zero_attn=add_zero_attn, kdim=kdim, vdim=vdim,
                                batch_first=batch_first).eval()
    if add_bias_kv:
        with torch.no_grad():
            mha.bias_k.normal_()
            mha.bias_v.normal_()
    return mha, decompose(mha)[0].eval()


def _inputs(batch_first, kdim=None, vdim=None, n=3, tgt=4, src=5):
    def shape(length, dim):
        return (n, length, dim) if batch_first else (length, n, dim)
    return (torch.randn(shape(tgt, 8)), torch.randn(shape(src, kdim or 8)),
            torch.randn(shape(src, vdim or 8)))


@pytest.mark.parametrize("batch_first,need_weights,average,options", list(itertools.product(
    [True, False], [True, False], [True, False],
    [{}, {"kdim": 6, "vdim": 4}, {"bias": False}, {"add_bias_kv": True},
     {"add_zero_attn": True}])))
def test_same_outputs_and_weights_as_multihead_attention(batch_first, need_weights, average,
                                                         options):
    mha, ours = _pair(batch_first, **options)
    q, k, v = _inputs(batch_first, options.get("kdim"), options.get("vdim"))
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, -2:] = True
    for mask in (None, torch.randn(4, 5), torch.rand(4, 5) > 0.7):
        for kpm in (None, padding):
            kw = {"key_padding_mask": kpm, "attn_mask": mask, "need_weights": need_weights,
                  "average_attn_weights": average}
            expected, ours_out = mha(q, k, v, **kw), ours(q, k, v, **kw)
            torch.testing.assert_close(ours_out[0], expected[0], rtol=1e-5, atol=1e-5)
            if need_weights:
                torch.testing.assert_close(ours_out[1], expected[1], rtol=1e-5, atol=1e-5)
            else:
                assert ours_out[1] is None and expected[1] is None


def test_causal_and_unbatched_inputs():
    mha, ours = _pair(True)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    x = torch.randn(2, 5, 8)
    for need in (True, False):
        torch.testing.assert_close(ours(x, x, x, attn_mask=causal, is_causal=True,
                                        need_weights=need)[0],
                                   mha(x, x, x, attn_mask=causal, is_causal=True,
                                       need_weights=need)[0], rtol=1e-5, atol=1e-5)
    single = torch.randn(5, 8)
    torch.testing.assert_close(ours(single, single, single)[0], mha(single, single, single)[0],
                               rtol=1e-5, atol=1e-5)


def test_dropout_in_training_mode_only():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    ours = decompose(mha)[0]
    x = torch.randn(2, 5, 8)
    assert not torch.allclose(ours(x, x, x)[0], ours(x, x, x)[0])  # dropout draws differ
    ours.eval()
    mha.eval()
    torch.testing.assert_close(ours(x, x, x)[0], mha(x, x, x)[0], rtol=1e-5, atol=1e-5)


def test_transformer_layers_run_it_on_their_slow_path():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()
    x = torch.randn(3, 5, 8)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[1, -2:] = True
    with torch.no_grad():
        expected = encoder(x, src_key_padding_mask=padding)
        from netshrink.core.attention import keep_encoders_on_slow_path

        for sub in encoder.layers:
            sub.self_attn = decompose(sub.self_attn)[0].eval()
        keep_encoders_on_slow_path(encoder)
        got = encoder(x, src_key_padding_mask=padding)
    keep = ~padding  # the fast path leaves padded positions as zeros; compare real tokens
    torch.testing.assert_close(got[keep], expected[keep], rtol=1e-4, atol=1e-5)
