import pytest
import torch

import netshrink
from netshrink.quant import Dynamic, QuantEmbedding, QuantLinear

transformers = pytest.importorskip("transformers")
from netshrink.models import minilm  # noqa: E402
from netshrink.quant.sentences import EVALUATION  # noqa: E402


def _tiny_encoder():
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=64)
    torch.manual_seed(0)
    return minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def test_dynamic_int8_bert_keeps_embeddings_and_uses_integer_layers():
    model = _tiny_encoder()
    ids = torch.randint(1, 120, (4, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    reference = model(ids, mask).detach()
    netshrink.quantize_(model, Dynamic())
    layers = list(model.modules())
    assert sum(isinstance(m, QuantLinear) for m in layers) == 12  # q k v o in out x 2
    assert sum(isinstance(m, QuantEmbedding) for m in layers) == 3
    assert not any(type(m) is torch.nn.Linear for m in layers)
    with torch.no_grad():
        out = model(ids, mask)
    assert float(minilm.cosine_to(reference, out).min()) > 0.99
    assert torch.allclose(out.norm(dim=-1), torch.ones(4))


@pytest.mark.slow
def test_minilm_int8_cosine_size_and_reload(tmp_path):
    model = minilm.pretrained()
    reference = minilm.encode(model, EVALUATION)
    float_bytes = netshrink.save(model, tmp_path / "f.safetensors").stat().st_size
    netshrink.quantize_(model, Dynamic())
    embeddings = minilm.encode(model, EVALUATION)
    assert float(minilm.cosine_to(reference, embeddings).mean()) >= 0.99
    path = netshrink.save(model, tmp_path / "q.safetensors")
    assert float_bytes / path.stat().st_size >= 3.9
    reloaded = netshrink.load(path)
    assert torch.equal(minilm.encode(reloaded, EVALUATION[:8]), embeddings[:8])
