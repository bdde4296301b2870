"""A multimodal PaLM-E model calls `super(PalmE).__init__()`, without `self`, so nn.Module is never initialised.

PalmE's constructor starts with `super(PalmE).__init__()`. With one argument, super() returns an unbound
super object; calling its __init__ only re-initialises that proxy and never reaches nn.Module.__init__.
The next line, `self.encoder = ViTransformerWrapper(...)`, then fails with "cannot assign module before
Module.__init__() call" and the model from the repository's example.py cannot be built. A reader pointed
out that it has to be `super(PalmE, self).__init__()` or `super().__init__()`; the author fixed it.

Source: https://github.com/kyegomez/PALM-E/issues/4
Finds: missing-super-init @ (the model)
"""
import torch
from torch import nn

VOCAB, DIM, IMAGE, PATCH, TEXT = 256, 64, 32, 8, 16


class ViTransformerWrapper(nn.Module):
    def __init__(self, image_size, patch_size, dim, depth, heads):
        super().__init__()
        self.patch_size = patch_size
        self.patch_to_embedding = nn.Linear(3 * patch_size ** 2, dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, (image_size // patch_size) ** 2, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True)
        self.attn_layers = nn.TransformerEncoder(layer, depth)

    def forward(self, img):
        p = self.patch_size
        patches = img.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)
        return self.attn_layers(self.patch_to_embedding(patches) + self.pos_embedding)


class Decoder(nn.Module):
    def __init__(self, num_tokens, dim, depth, heads):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True)
        self.layers = nn.TransformerEncoder(layer, depth)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, text, prefix):
        x = torch.cat([prefix, self.token_emb(text)], dim=1)
        causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.to_logits(self.layers(x, mask=causal, is_causal=True))[:, prefix.shape[1]:]


class PalmE(nn.Module):
    def __init__(self, num_tokens=VOCAB, dim=DIM, depth=2, heads=4, image_size=IMAGE, patch_size=PATCH):
        super(PalmE).__init__()                     # the bug: unbound super, nn.Module.__init__ never runs
        self.encoder = ViTransformerWrapper(image_size, patch_size, dim, depth, heads)
        self.decoder = Decoder(num_tokens, dim, depth, heads)

    def forward(self, img, text):
        return self.decoder(text[:, :-1], self.encoder(img))


def make_batch(batch_size: int):
    img = torch.randn(batch_size, 3, IMAGE, IMAGE)
    text = torch.randint(0, VOCAB, (batch_size, TEXT))
    return (img, text), text[:, 1:]


def loss_fn(logits, target):
    return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1))
