"""Fine-tuning BertForSequenceClassification with the Hugging Face Trainer: evaluation every 10 steps,
gradient accumulation 2, a linear learning-rate schedule with warm-up.

Source: Hugging Face transformers docs, "Fine-tune a pretrained model" (training.md: a sequence-classification
model, TrainingArguments with an evaluation strategy, Trainer(model, args, train_dataset, eval_dataset,
compute_metrics).train()), rewritten in our own words with a BERT built from a tiny BertConfig instead of
downloaded weights, synthetic token ids whose label is readable from the words, and ForgeScopeCallback
recording the run.
Finds: nothing
"""
import os

import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from probes.integrations.transformers import ForgeScopeCallback

VOCAB, LABELS, SEQ = 100, 3, 16


class SyntheticReviews(Dataset):
    """Each label draws most of its words from its own third of the vocabulary; the rest is noise."""

    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, LABELS, (n,), generator=g)
        band = (VOCAB - 1) // LABELS
        ids = 1 + self.labels[:, None] * band + torch.randint(0, band, (n, SEQ), generator=g)
        noise = torch.rand(n, SEQ, generator=g) < 0.3
        self.ids = torch.where(noise, torch.randint(1, VOCAB, (n, SEQ), generator=g), ids)
        self.ids[:, 0] = 0                                              # a [CLS]-like first token

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long),
                "labels": self.labels[i]}


def accuracy(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def train(run_dir):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=LABELS)
    model = BertForSequenceClassification(config)
    args = TrainingArguments(output_dir=os.path.join(run_dir, "hf_output"), use_cpu=True, report_to=[],
                             save_strategy="no", disable_tqdm=True, max_steps=40,
                             per_device_train_batch_size=8, per_device_eval_batch_size=32,
                             gradient_accumulation_steps=2, learning_rate=3e-3, weight_decay=0.01,
                             lr_scheduler_type="linear", warmup_steps=5, eval_strategy="steps", eval_steps=10,
                             logging_steps=5, seed=0, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=SyntheticReviews(480, 1),
                      eval_dataset=SyntheticReviews(64, 2), compute_metrics=accuracy,
                      callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.train()
