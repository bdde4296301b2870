"""A from-scratch self-attention MNIST script averages the epoch loss as `e_train += e_batch/len(loader)`.

The script trains a bare self-attention model (K, Q, V matrices as Parameters, one sample at a time) and,
after each optimizer step, accumulates the running epoch averages `e_train += e_batch/len(loader_train)`
and the same for accuracy. `e_batch` is the loss tensor, so the sum is itself a tensor that holds every
batch's autograd graph, attention maps included, until the epoch ends; a reader running it on Kaggle ran
out of RAM. Their fix, merged: accumulate `e_batch.detach()/len(loader_train)`.

Source: https://github.com/jostmey/NakedAttention/issues/1
Finds: memory-growth
"""
import torch

from probes import Probe

SIDE = 10


class SelfAttentionModel(torch.nn.Module):
    def __init__(self, num_steps, num_channels, num_outputs, **kwargs):
        super().__init__(**kwargs)
        bound = num_channels ** 0.5
        self.K = torch.nn.Parameter((2.0 * torch.rand(num_channels, num_channels) - 1.0) / bound)
        self.Q = torch.nn.Parameter((2.0 * torch.rand(num_channels, num_channels) - 1.0) / bound)
        self.V = torch.nn.Parameter((2.0 * torch.rand(num_channels, num_channels) - 1.0) / bound)
        self.softmax = torch.nn.Softmax(dim=1)
        self.out = torch.nn.Linear(num_steps * num_channels, num_outputs)

    def forward(self, x):
        batch_size, num_steps, num_channels = x.shape
        y = []
        for i in range(batch_size):                     # one sample at a time, as in the original
            x_i = x[i]
            k, q, v = x_i @ self.K, x_i @ self.Q, x_i @ self.V
            w_i = self.softmax(q @ k.T / num_channels ** 0.5)          # (steps, steps)
            y.append(w_i @ v)
        y = torch.stack(y)
        return self.out(y.reshape(batch_size, num_steps * num_channels))


def digits(n, seed):
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(n, SIDE * SIDE, 1, generator=g)
    ys = (xs[:, : SIDE * SIDE // 2].mean((1, 2)) * 20).long().clamp(0, 9)
    return xs, ys


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    model = SelfAttentionModel(num_steps=SIDE * SIDE, num_channels=1, num_outputs=10)
    probability = torch.nn.Softmax(dim=1)
    loss = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    xs_train, ys_train = digits(256, 1)
    xs_val, ys_val = digits(64, 2)
    dataset_train = torch.utils.data.TensorDataset(xs_train, ys_train)
    sampler_train = torch.utils.data.RandomSampler(dataset_train, replacement=True)
    loader_train = torch.utils.data.DataLoader(dataset_train, batch_size=16, sampler=sampler_train, drop_last=True)
    with Probe(model, optimizer, run_dir=run_dir) as probe:
        for i in range(2):
            model.train()
            e_train = 0.0
            a_train = 0.0
            for xs_batch, ys_batch in probe.wrap(loader_train):
                ls_batch = model(xs_batch)
                ps_batch = probability(ls_batch)
                e_batch = loss(ls_batch, ys_batch)
                a_batch = (ps_batch.argmax(1) == ys_batch).float().mean()
                optimizer.zero_grad()
                e_batch.backward()
                optimizer.step()
                e_train += e_batch / len(loader_train)          # the bug: keeps every batch's graph
                a_train += a_batch / len(loader_train)
            model.eval()
            with torch.no_grad():
                e_val = loss(model(xs_val), ys_val)
            print(f"i: {i}  e_train: {float(e_train) / 0.693:.5f} bits  a_train: {100 * float(a_train):.1f} %  "
                  f"e_val: {float(e_val) / 0.693:.5f} bits")
