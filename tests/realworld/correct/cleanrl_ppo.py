"""PPO update on a discrete-action actor-critic: orthogonal init, clipped surrogate, clipped value loss, entropy
bonus, per-minibatch advantage normalisation and gradient clipping at 0.5.

Source: vwxyzjn/cleanrl, cleanrl/ppo.py (Agent with layer_init(std=sqrt(2)) Tanh MLPs, actor head std 0.01,
critic head std 1; clip_coef 0.2, ent_coef 0.01, vf_coef 0.5, max_grad_norm 0.5, Adam lr 2.5e-4 eps 1e-5).
The rollout is a random stand-in for environment steps; old log-probs and values come from the same policy
under no_grad, as at collection time.
Finds: nothing
"""
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

OBS, ACTIONS = 8, 4
CLIP, ENT_COEF, VF_COEF, MAX_GRAD_NORM, EPOCHS = 0.2, 0.01, 0.5, 0.5, 2


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.critic = nn.Sequential(layer_init(nn.Linear(OBS, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)),
                                    nn.Tanh(), layer_init(nn.Linear(64, 1), std=1.0))
        self.actor = nn.Sequential(layer_init(nn.Linear(OBS, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)),
                                   nn.Tanh(), layer_init(nn.Linear(64, ACTIONS), std=0.01))

    def get_value(self, x):
        return self.critic(x)

    def forward(self, x, action=None):
        """get_action_and_value: sample (or score) an action, with its log-prob, the entropy and the value."""
        dist = Categorical(logits=self.actor(x))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(x)


def build_model():
    return Agent()


def make_batch(batch_size):
    n = batch_size * 8                                   # one rollout: num_envs * num_steps transitions
    obs = torch.randn(n, OBS)
    returns = obs[:, :2].sum(1) + 0.1 * torch.randn(n)   # a learnable value target
    return obs, returns


def train_step(model, batch, optimizer, loss_fn):
    obs, returns = batch
    with torch.no_grad():                                # what the rollout stored
        actions, old_logprob, _, old_values = model(obs)
        old_values = old_values.squeeze(-1)
    advantages = returns - old_values
    n, minibatch = obs.size(0), obs.size(0) // 4
    for _ in range(EPOCHS):
        order = torch.randperm(n)
        for start in range(0, n, minibatch):
            idx = order[start:start + minibatch]
            _, logprob, entropy, value = model(obs[idx], actions[idx])
            ratio = (logprob - old_logprob[idx]).exp()
            adv = advantages[idx]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - CLIP, 1 + CLIP)).mean()
            value = value.squeeze(-1)
            v_clipped = old_values[idx] + (value - old_values[idx]).clamp(-CLIP, CLIP)
            v_loss = 0.5 * torch.max((value - returns[idx]) ** 2, (v_clipped - returns[idx]) ** 2).mean()
            loss = pg_loss - ENT_COEF * entropy.mean() + VF_COEF * v_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
    return loss


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=2.5e-4, eps=1e-5)
