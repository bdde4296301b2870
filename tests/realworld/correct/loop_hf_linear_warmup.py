"""A tiny GPT-2 fine-tuned the way transformers' Trainer does it: AdamW decay groups, linear warm-up schedule,
gradient accumulation 2, clipping at 1.0.

Source: Hugging Face transformers, Trainer defaults (trainer.py: max_grad_norm=1.0, decay groups) with
get_linear_schedule_with_warmup (optimization.py) and GPT2LMHeadModel (models/gpt2/modeling_gpt2.py).
Finds: nothing
"""
import torch
from transformers import GPT2Config, GPT2LMHeadModel, get_linear_schedule_with_warmup

from probes import Probe

VOCAB, STEPS, ACCUM = 128, 20, 2


def train(run_dir):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                       bos_token_id=0, eos_token_id=0))
    no_decay = ("bias", "ln_1.weight", "ln_2.weight", "ln_f.weight")
    groups = [{"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=5e-4)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=3, num_training_steps=STEPS)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for step in range(STEPS):
            for _ in range(ACCUM):
                ids = torch.randint(0, VOCAB, (8, 24))
                loss = model(input_ids=ids, labels=ids).loss / ACCUM
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
