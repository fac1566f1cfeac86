"""Run under TRITON_INTERPRET=1: the Triton log-mel against the PyTorch path."""
import sys

import numpy as np
import torch

from asr import kernels
from asr.whisper.features import LogMel

assert kernels.available()
rng = np.random.default_rng(0)
# several streams' windows of different content and level, one not a whole block of rows
x = torch.from_numpy(rng.standard_normal((3, 16000 + 480 * 7)).astype(np.float32))
x *= torch.tensor([[0.001], [0.1], [1.0]])
x[1, 4000:4200] = 0.0
mel = LogMel()
ref = mel(x, use_triton=False)
got = mel(x, use_triton=True)
assert got.shape == ref.shape, (got.shape, ref.shape)
err = (got - ref).abs().max().item()
print(f"max abs difference {err:.2e} over {tuple(got.shape)}")
sys.exit(0 if err < 1e-4 else 1)
