"""A REINFORCE loop builds its policy loss from `.item()` numbers, then re-wraps them with requires_grad.

The molecule generator's reinforcement step accumulates `rl_loss -= log_probs[0, top_i].item() * reward`
(changed to `.item()` to get around a CUDA-to-numpy error). That is a Python float with no history, so
to call backward() it is wrapped again as a new leaf tensor with requires_grad=True. backward() then runs,
but the reporter found every layer's grad is None and the weights never change.

Source: https://github.com/isayev/ReLeaSE/issues/39
Finds: gradient-chain-broken @ (the model)
"""
import torch
from torch import nn

from probes import Probe

VOCAB, HIDDEN, LENGTH, EPISODES_PER_STEP, STEPS = 30, 64, 12, 4, 30


class StackRNNGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, VOCAB)

    def forward(self, token, hidden=None):
        out, hidden = self.rnn(self.embed(token).unsqueeze(1), hidden)
        return self.decoder(out.squeeze(1)), hidden


def reward(tokens: list[int]) -> float:
    """Stands in for the property predictor: likes sequences with many even tokens."""
    return sum(t % 2 == 0 for t in tokens) / len(tokens)


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    generator = StackRNNGenerator()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    gamma = 0.97
    with Probe(generator, optimizer, run_dir=run_dir):
        for _ in range(STEPS):
            rl_loss = 0.0
            for _ in range(EPISODES_PER_STEP):
                token, hidden, trajectory, log_probs = torch.zeros(1, dtype=torch.long), None, [], []
                for _ in range(LENGTH):
                    logits, hidden = generator(token, hidden)
                    lp = torch.log_softmax(logits, dim=-1)
                    token = torch.multinomial(lp.exp(), 1).view(1)
                    trajectory.append(int(token))
                    log_probs.append(lp)
                discounted_reward = reward(trajectory)
                for top_i, lp in zip(trajectory, log_probs):
                    rl_loss -= lp[0, top_i].item() * discounted_reward      # a float: no graph left
                    discounted_reward *= gamma
            rl_loss = torch.tensor([rl_loss / EPISODES_PER_STEP], requires_grad=True)   # the bug
            optimizer.zero_grad()
            rl_loss.backward()
            optimizer.step()
