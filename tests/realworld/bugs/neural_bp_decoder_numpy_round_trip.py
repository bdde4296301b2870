"""A neural belief-propagation decoder is ported from NumPy by round-tripping every layer through .numpy().

The forum post converts a working NumPy sum-product decoder into PyTorch to learn its edge weights. Each
step became a helper like `SPA_tanh(W, A)`: `W.detach().numpy()`, `A.detach().numpy()`, the NumPy maths,
then `torch.from_numpy(...)`. The values are right, but every helper hands back a tensor with no history:
the trainable weights never reach the loss's graph and the decoder cannot be trained.

Source: https://huggingface.co/datasets/nvidia/Nemotron-CC-Math-v1
Finds: gradient-chain-broken @ (the model)
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# (7, 4) Hamming code
H = np.array([[1, 0, 1, 0, 1, 0, 1],
              [0, 1, 1, 0, 0, 1, 1],
              [0, 0, 0, 1, 1, 1, 1]])
CHECKS, N = H.shape
EDGES = [(c, v) for c in range(CHECKS) for v in range(N) if H[c, v]]
E = len(EDGES)
VAR_TO_EDGE = np.array([[1.0 if v == ev else 0.0 for (_, ev) in EDGES] for v in range(N)])          # (N, E)
SAME_CHECK = np.array([[1.0 if c1 == c2 and v1 != v2 else 0.0 for (c2, v2) in EDGES] for (c1, v1) in EDGES])
SNR_VARIANCE = 0.5


def SPA_tanh(W, A):
    W1 = W.detach().numpy()                                    # the bug: leaves autograd for NumPy
    A1 = A.detach().numpy()
    return torch.from_numpy(np.tanh(np.matmul(A1, W1) / 2))


def SPA_arctanh(W, A):
    W2 = W.detach().numpy()
    A2 = A.detach().numpy()
    M1 = W2[None, :, :] * A2[:, :, None]
    prod = np.prod(M1 + (M1 == 0), axis=1)
    return torch.from_numpy(2 * np.arctanh(np.clip(prod, -0.999999, 0.999999)))


def SPA_output(W, A, In):
    I = In.detach().numpy()
    W3 = W.detach().numpy()
    A3 = A.detach().numpy()
    return torch.from_numpy(I + np.matmul(A3, W3))


class NeuralBPDecoder(nn.Module):
    def __init__(self, iterations: int = 3):
        super().__init__()
        self.iterations = iterations
        self.register_buffer("var_to_edge", torch.tensor(VAR_TO_EDGE))
        self.register_buffer("same_check", torch.tensor(SAME_CHECK))
        self.edge_weights = nn.Parameter(torch.ones(iterations, E, dtype=torch.float64))
        self.output_weights = nn.Parameter(torch.ones(iterations, E, dtype=torch.float64))

    def forward(self, llr):
        A1 = llr
        for t in range(self.iterations):
            A2 = SPA_tanh(self.var_to_edge * self.edge_weights[t], A1)                # variable -> check
            A3 = SPA_arctanh(self.same_check, A2)                                     # check -> variable
            A1 = SPA_output(self.var_to_edge.t() * self.output_weights[t][:, None], A3, llr)
        return -A1                                                                    # logit of bit = 1


def make_batch(batch_size: int):
    bits = torch.zeros(batch_size, N, dtype=torch.float64)                    # all-zero codeword
    received = (1 - 2 * bits) + SNR_VARIANCE ** 0.5 * torch.randn(batch_size, N, dtype=torch.float64)
    return 2 * received / SNR_VARIANCE, bits                                  # channel LLRs


def loss_fn(logits, bits):
    return F.binary_cross_entropy_with_logits(logits, bits)
