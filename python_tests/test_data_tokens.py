import numpy as np
import pytest
import torch

from nbp_ext.data import TokenDataset, TokenFileWriter


def _fill(writer, start, stop):
    for i in range(start, stop):
        codes = torch.full((1, 2, 3, 3), i * 1000 + 7, dtype=torch.int64)
        writer.write(codes, torch.tensor([i]), torch.tensor([i * 2]), torch.tensor([i % 3]))
        writer.commit(i + 1, complete=i + 1 == 5)


def test_write_reopen_and_read(tmp_path):
    w = TokenFileWriter(tmp_path / "t", 5, (2, 3, 3), 64000, info={"k": 1}, video_names=[f"v{i}" for i in range(5)])
    assert w.tokens.dtype == np.uint16
    _fill(w, 0, 2)
    with pytest.raises(ValueError, match="incomplete"):
        TokenDataset(tmp_path / "t")
    w = TokenFileWriter(tmp_path / "t", 5, (2, 3, 3), 64000, info={"k": 1})  # an interrupted run comes back
    assert w.done == 2 and not w.complete
    _fill(w, 2, 5)
    ds = TokenDataset(tmp_path / "t")
    assert len(ds) == 5 and ds.vocab_size == 64000 and ds.latent_shape == (2, 3, 3)
    item = ds[4]
    assert item["codes"].dtype == torch.int64 and item["codes"].shape == (2, 3, 3)
    assert int(item["codes"][0, 0, 0]) == 4007 and (item["video_id"], item["start"], item["label"]) == (4, 8, 1)
    assert (tmp_path / "t" / "videos.txt").read_text().split() == [f"v{i}" for i in range(5)]


def test_mismatched_reopen_and_large_vocab(tmp_path):
    TokenFileWriter(tmp_path / "t", 5, (2, 3, 3), 64000, info={"k": 1})
    with pytest.raises(ValueError, match="another run"):
        TokenFileWriter(tmp_path / "t", 5, (2, 3, 3), 64000, info={"k": 2})
    assert TokenFileWriter(tmp_path / "big", 1, (1, 1, 1), 100000).tokens.dtype == np.int32
    with pytest.raises(FileNotFoundError, match="token folder"):
        TokenDataset(tmp_path / "missing")
