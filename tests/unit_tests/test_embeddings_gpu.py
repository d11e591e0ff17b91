"""Embedding on a GPU: the adapter picks CUDA by itself and gives the vectors the CPU gives.

A tiny randomly initialised BERT, written to a local folder, stands in for a real model so the
test needs no download (and, on the GPU machine, no packaged model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")
st_models = pytest.importorskip("sentence_transformers.models")
transformers = pytest.importorskip("transformers")
CUDA = torch.cuda.is_available()

from langchain_memvid.embeddings import SentenceTransformerEmbeddings  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU that torch can see"),
]

TEXTS = ["the video frame holds qr codes", "search finds nearest vectors", "text on gpu"]
WORDS = sorted({word for text in TEXTS for word in text.split()})


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    """A sentence-transformers folder: a 2-layer BERT over the test's words, mean pooling."""
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(bert / "vocab.txt")).save_pretrained(str(bert))
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(str(bert))
    word = st_models.Transformer(str(bert), max_seq_length=32)
    model = st.SentenceTransformer(modules=[word, st_models.Pooling(32)], device="cpu")
    out = tmp_path / "st"
    model.save(str(out))
    return str(out)


def test_embeds_on_the_gpu_by_default_with_the_cpu_results(tiny_model: str) -> None:  # pragma: no cover
    on_gpu = SentenceTransformerEmbeddings(model_name=tiny_model)
    on_cpu = SentenceTransformerEmbeddings(model_name=tiny_model, model_kwargs={"device": "cpu"})
    on_gpu.load()
    assert str(on_gpu._client.device).startswith("cuda")  # no device given: CUDA chosen
    gpu_vectors = np.array(on_gpu.embed_documents(TEXTS))
    cpu_vectors = np.array(on_cpu.embed_documents(TEXTS))
    assert gpu_vectors.shape == (3, 32)
    np.testing.assert_allclose(gpu_vectors, cpu_vectors, atol=1e-4)
    np.testing.assert_allclose(on_gpu.embed_query(TEXTS[1]), cpu_vectors[1], atol=1e-4)
