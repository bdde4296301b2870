"""Qwen2-MoE causal LM: top-2 routed experts plus a sigmoid-gated shared expert, router aux loss, tiny config.

Source: Hugging Face transformers, Qwen2MoeForCausalLM (models/qwen2_moe/modeling_qwen2_moe.py).
Finds: nothing
"""
import torch
from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

VOCAB = 128


def build_model():
    config = Qwen2MoeConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, moe_intermediate_size=32,
                            shared_expert_intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, decoder_sparse_step=1,
                            norm_topk_prob=False, output_router_logits=True, router_aux_loss_coef=0.01,
                            max_position_embeddings=64, use_sliding_window=False)
    return Qwen2MoeForCausalLM(config)


def make_batch(batch_size):
    ids = torch.randint(0, VOCAB, (batch_size, 24))
    return {"input_ids": ids, "labels": ids}, ids


def loss_fn(outputs, targets):
    return outputs.loss        # LM loss plus the load-balancing loss


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
