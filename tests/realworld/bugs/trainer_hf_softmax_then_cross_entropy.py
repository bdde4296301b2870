"""A Hugging Face tutorial's Chinese text classifier ends its forward in a softmax, then trains with
nn.CrossEntropyLoss: the loss gets probabilities where it expects logits.

The tutorial's classification notebooks put a linear layer on the [CLS] hidden state of a BERT and finish
Model.forward with `out.softmax(dim=1)`; the training code then applies `torch.nn.CrossEntropyLoss()` to that
output and the labels. The report points out that CrossEntropyLoss already does log_softmax + NLL on raw
logits, so the loss computed is CrossEntropyLoss(softmax(logits)): a different loss with flattened gradients;
the fix returns the logits and applies softmax only when probabilities are wanted. Rewritten in our own words
with the same model (a BERT from a tiny config instead of the pretrained Chinese weights) trained by the
Hugging Face Trainer, whose compute_loss is overridden to apply the criterion as the notebook does.

Source: https://github.com/lansinuote/Huggingface_Toturials/issues/6
Finds: loss-input-mismatch
"""
import os

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import BertConfig, BertModel, Trainer, TrainingArguments

from probes.integrations.transformers import ForgeScopeCallback

VOCAB, SEQ, LABELS = 100, 16, 2


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pretrained = BertModel(config, add_pooling_layer=False)
        self.fc = nn.Linear(config.hidden_size, LABELS)

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.pretrained(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        out = self.fc(out.last_hidden_state[:, 0])
        return out.softmax(dim=1)                              # the bug: probabilities, not logits


class SentimentIds(Dataset):
    """Positive reviews use words from the upper half of the vocabulary more often."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, LABELS, (n,), generator=g)
        half = VOCAB // 2
        ids = torch.randint(1, half, (n, SEQ), generator=g) + self.labels[:, None] * (half - 1)
        self.ids = torch.where(torch.rand(n, SEQ, generator=g) < 0.4, torch.randint(1, VOCAB, (n, SEQ), generator=g),
                               ids)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long),
                "token_type_ids": torch.zeros(SEQ, dtype=torch.long), "labels": self.labels[i]}


class NotebookLossTrainer(Trainer):
    criterion = nn.CrossEntropyLoss()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        out = model(**inputs)
        loss = self.criterion(out, labels)
        return (loss, out) if return_outputs else loss


def train(run_dir):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    args = TrainingArguments(output_dir=os.path.join(run_dir, "hf_output"), use_cpu=True, report_to=[],
                             save_strategy="no", disable_tqdm=True, max_steps=30, per_device_train_batch_size=16,
                             learning_rate=5e-4, logging_steps=10, seed=0, remove_unused_columns=False)
    trainer = NotebookLossTrainer(model=Model(config), args=args, train_dataset=SentimentIds(480, 0),
                                  callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.train()
