"""Fixtures of the adaptation tests: one torch thread, and a tiny start checkpoint of each family."""

from pathlib import Path

import pytest
import torch

from tiny_models import tiny_bert, tiny_llama, tiny_t5


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on shared cores its waits cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def starts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("starts")
    return {
        "bert_mlm": tiny_bert(root / "bert_mlm", 0, "mlm"),
        "t5": tiny_t5(root / "t5", 0),
        "llama": tiny_llama(root / "llama", 0),
        "bi_encoder": tiny_bert(root / "bi_encoder", 0, "bi_encoder"),
    }
