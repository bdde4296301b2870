"""A BERT pre-training pipeline stores raw documents and tokenizes every batch in the collator, in the loop.

The dataset held the text and the data collator ran the tokenizer (then truncation and MLM masking) on each
batch as it was drawn. With the DataLoader's default num_workers=0 that work runs in the training process
between steps, so the accelerator waits for it every step; whole documents are tokenized only to keep their
first 128 tokens. The merged change pre-tokenizes the dataset up front to speed training up.

Source: https://github.com/marin-community/marin/pull/900
Finds: dataloader-stall
"""
import os
import random
import tempfile

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import BertConfig, BertForMaskedLM, BertTokenizer

SEQ, WORDS_PER_DOC = 128, 4000
_rng = random.Random(0)
LEXICON = ["".join(_rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_rng.randint(2, 9))) for _ in range(3000)]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w[:4] for w in LEXICON})
         + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz"))
_vocab_dir = tempfile.mkdtemp(prefix="bert-vocab-")
with open(os.path.join(_vocab_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(VOCAB))
tokenizer = BertTokenizer(vocab_file=os.path.join(_vocab_dir, "vocab.txt"))


class RawTextDataset(Dataset):
    def __init__(self, n_docs=32):
        self.docs = [" ".join(_rng.choices(LEXICON, k=WORDS_PER_DOC)) for _ in range(n_docs)]

    def __len__(self):
        return len(self.docs)

    def __getitem__(self, i):
        return self.docs[i]


def mlm_collator(texts):
    enc = tokenizer(texts, truncation=True, max_length=SEQ, padding="max_length", return_tensors="pt")
    labels = enc["input_ids"].clone()
    mask = (torch.rand(labels.shape) < 0.15) & (labels > 4)
    enc["input_ids"][mask] = tokenizer.mask_token_id
    labels[~mask] = -100
    return dict(enc), labels


def build_model():
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=SEQ)
    return BertForMaskedLM(config)


def make_loader():
    return DataLoader(RawTextDataset(), batch_size=8, shuffle=True,
                      collate_fn=mlm_collator)                      # the bug: tokenizing in the loop, no workers


def loss_fn(outputs, labels):
    return torch.nn.functional.cross_entropy(outputs.logits.reshape(-1, len(VOCAB)), labels.reshape(-1))


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-4)
