"""ir_datasets set up: its home fixed before it is imported, and the offline mirror's files placed once."""

import pytest

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.ir import irds


def test_place_offline_files_is_idempotent(irds_home, mirror_dir):
    dataset = DatasetConfig(
        name="placement",
        docs="cranfield",
        splits={"test": "cranfield"},
        offline_files={"placement-test/cran.tar.gz": "cran.tar.gz"},
    )
    placed = irds.place_offline_files(dataset, mirror_dir)
    assert placed == [irds_home / "placement-test" / "cran.tar.gz"]
    assert placed[0].resolve() == (mirror_dir / "cran.tar.gz").resolve()
    assert irds.place_offline_files(dataset, mirror_dir) == []
    assert irds.place_offline_files(dataset, None) == []


def test_missing_mirror_file_names_the_config_key(irds_home, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.offline_files"):
        irds.place_offline_files(
            DatasetConfig(name="x", docs="x", splits={"test": "x"}, offline_files={"x/source.zip": "absent.zip"}),
            tmp_path,
        )


def test_home_cannot_change_after_import(irds_home, tmp_path):
    import ir_datasets  # noqa: F401  (the check only applies once it is imported)

    with pytest.raises(RuntimeError, match="IR_DATASETS_HOME"):
        irds.use_ir_datasets_home(tmp_path / "elsewhere")
    assert irds.ir_datasets_home() == irds_home
