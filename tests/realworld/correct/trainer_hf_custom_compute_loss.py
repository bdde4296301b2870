"""A Trainer subclass whose compute_loss weighs the classes in the cross-entropy (an imbalanced label set).

Source: Hugging Face transformers docs, "Trainer" (trainer.md, "Customize the Trainer": a CustomTrainer
overriding compute_loss(model, inputs, return_outputs=False, num_items_in_batch=None) that pops the labels,
runs the model, and applies nn.CrossEntropyLoss with per-class weights to the logits), rewritten in our own
words with a DistilBERT built from a tiny config, synthetic token ids with a rare third class, and
ForgeScopeCallback recording the run.
Finds: nothing
"""
import os

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import DistilBertConfig, DistilBertForSequenceClassification, Trainer, TrainingArguments

from probes.integrations.transformers import ForgeScopeCallback

VOCAB, LABELS, SEQ = 100, 3, 12
CLASS_WEIGHTS = (1.0, 1.0, 4.0)                 # the third class is four times rarer


class ImbalancedTokens(Dataset):
    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.multinomial(torch.tensor([0.4, 0.4, 0.2]), n, replacement=True, generator=g)
        self.ids = torch.randint(4, VOCAB, (n, SEQ), generator=g)
        self.ids[:, 0] = 1 + self.labels                               # the first token (1, 2 or 3) names the class

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long),
                "labels": self.labels[i]}


class WeightedLossTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.get("logits")
        weight = torch.tensor(CLASS_WEIGHTS, device=logits.device)
        loss = nn.CrossEntropyLoss(weight=weight)(logits.view(-1, model.config.num_labels), labels.view(-1))
        return (loss, outputs) if return_outputs else loss


def train(run_dir):
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=32, num_labels=LABELS)
    model = DistilBertForSequenceClassification(config)
    args = TrainingArguments(output_dir=os.path.join(run_dir, "hf_output"), use_cpu=True, report_to=[],
                             save_strategy="no", disable_tqdm=True, max_steps=40, per_device_train_batch_size=16,
                             learning_rate=3e-3, warmup_steps=3, logging_steps=10, seed=0)
    trainer = WeightedLossTrainer(model=model, args=args, train_dataset=ImbalancedTokens(640, 3),
                                  callbacks=[ForgeScopeCallback(run_dir=run_dir)])
    trainer.train()
