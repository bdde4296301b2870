"""Token classification on a BERT encoder whose pooler runs but is unused: the optimizer leaves the pooler out.

Source: Hugging Face transformers, BertForTokenClassification (models/bert/modeling_bert.py), which classifies
every token from last_hidden_state and never uses the pooled [CLS] output (it builds BertModel with
add_pooling_layer=False); here the encoder keeps its pooler, and the optimizer is built only over the
parameters outside it, with the usual no-decay group for biases and LayerNorm weights.
Finds: nothing
"""
import torch
from torch import nn
from transformers import BertConfig, BertModel

from probes import Probe

VOCAB, TAGS, SEQ = 120, 5, 16


class TokenTagger(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, TAGS)

    def forward(self, input_ids, attention_mask):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask)    # also computes pooler_output
        return self.classifier(self.dropout(out.last_hidden_state))


def train(run_dir):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = TokenTagger(config)
    no_decay = ("bias", "LayerNorm.weight")
    used = [(n, p) for n, p in model.named_parameters() if not n.startswith("bert.pooler.")]
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in used if not any(k in n for k in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in used if any(k in n for k in no_decay)], "weight_decay": 0.0}], lr=1e-3)
    model.train()
    with Probe(model, optimizer, run_dir=run_dir):
        for step in range(25):
            ids = torch.randint(0, VOCAB, (8, SEQ))
            tags = ids % TAGS                                 # each word's tag follows from the word
            logits = model(ids, torch.ones_like(ids))
            loss = nn.functional.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
