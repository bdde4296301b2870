"""An LLM fine-tuning template sums `loss_sum += loss` over the epoch, keeping every step's graph alive.

The training function adds each step's loss tensor to a running sum for logging; the sum keeps a reference
to every step's autograd graph and its activations, and memory grows until the worker runs out. The fix
that was merged: make sure the loss can be freed after every iteration (`loss.item()` / `detach()`).

Source: https://github.com/ray-project/ray/pull/40940
Finds: memory-growth
"""
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from probes import Probe

VOCAB, SEQ, BATCH, STEPS = 1000, 64, 8, 40


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=128, n_layer=2, n_head=4,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)                             # random init: no weights downloaded
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    batches = [torch.randint(0, VOCAB, (BATCH, SEQ)) for _ in range(STEPS)]
    with Probe(model, optimizer, run_dir=run_dir):
        loss_sum = 0
        for step, input_ids in enumerate(batches):
            outputs = model(input_ids=input_ids, labels=input_ids)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss_sum += loss                                    # the bug: keeps each step's graph
        print(f"mean loss {float(loss_sum) / STEPS:.3f}")
