"""A tiny tokenizer must learn: a short fixed-seed run on the synthetic set beats a measured bound."""

import json

from nbp_ext.data import DataConfig
from nbp_ext.train.tokenizer import TokenizerTrainConfig, train_tokenizer

# Measured with this exact setup (seed 0) on the same 8 held-out clips: untrained 9.9 dB PSNR and
# 0.02 SSIM; after the 30 steps 15.1 dB and 0.37. The bounds sit between, well above untrained.
PSNR_BOUND = 13.5
SSIM_BOUND = 0.25


def test_tiny_tokenizer_learns_on_synthetic_clips(tmp_path):
    cfg = TokenizerTrainConfig(model="tiny", fsq_levels=(8, 8, 8, 5, 5, 5), loss="l1", steps=30, batch_size=4, lr=2e-3, warmup=5, eval_every=1000,
                               sample_every=1000, ckpt_every=1000, log_every=1000, eval_clips=8,
                               run_dir=str(tmp_path / "run"), progress=False, seed=0)
    data = DataConfig(frames=17, size=32, train_clips=400, val_clips=8, seed=0)
    run = train_tokenizer(cfg, data)
    scores = json.loads((run / "eval.json").read_text())
    assert scores["psnr"] > PSNR_BOUND, f"held-out PSNR {scores['psnr']:.2f} dB; learning is broken"
    assert scores["ssim"] > SSIM_BOUND, f"held-out SSIM {scores['ssim']:.3f}; learning is broken"
