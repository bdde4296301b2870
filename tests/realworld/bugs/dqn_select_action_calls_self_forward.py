"""A CartPole DQN picks its actions with `self.forward(state)` inside QNetwork.select_action().

Training batches go through `onlineQNetwork(batch_state)`, but the acting path, called on every
environment step, is `select_action()`, which runs `Q = self.forward(state)` under torch.no_grad(). Calling
forward() directly skips the module's __call__: forward pre-hooks and hooks (anything a logger, a pruning
or quantisation wrapper, or a profiler registers) never see the acting passes. The merged PR: "Avoid
calling forward directly", `Q = self(state)`.

Source: https://github.com/gouxiangchen/dueling-DQN-pytorch/pull/5
Finds: forward-called-directly @ (the model)
"""
import math
import random
from collections import deque

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe


class CartPole:
    """The classic cart-pole dynamics (gym's CartPole-v0), without gym."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, size=4)
        return self.state.copy()

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = 10.0 if action == 1 else -10.0
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + 0.05 * theta_dot ** 2 * sin) / 1.1
        theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos ** 2 / 1.1))
        x_acc = temp - 0.05 * theta_acc * cos / 1.1
        self.state = np.array([x + 0.02 * x_dot, x_dot + 0.02 * x_acc,
                               theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc])
        done = abs(self.state[0]) > 2.4 or abs(self.state[2]) > 12 * 2 * math.pi / 360
        return self.state.copy(), 1.0, done, {}


class QNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 64)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(64, 256)
        self.fc3 = nn.Linear(256, 2)

    def forward(self, state):
        y = self.relu(self.fc1(state))
        y = self.relu(self.fc2(y))
        return self.fc3(y)

    def select_action(self, state):
        with torch.no_grad():
            Q = self.forward(state)                     # the bug: bypasses __call__ and its hooks
            action_index = torch.argmax(Q, dim=1)
        return action_index.item()


def train(run_dir: str) -> None:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    env = CartPole()
    onlineQNetwork, targetQNetwork = QNetwork(), QNetwork()
    targetQNetwork.load_state_dict(onlineQNetwork.state_dict())
    optimizer = torch.optim.Adam(onlineQNetwork.parameters(), lr=1e-4)
    GAMMA, EPSILON, BATCH, UPDATE_STEPS = 0.99, 0.1, 16, 4
    memory = deque(maxlen=50000)
    learn_steps = 0
    with Probe(onlineQNetwork, optimizer, run_dir=run_dir):
        while learn_steps < 30:
            state = env.reset()
            for _ in range(200):
                if random.random() < EPSILON:
                    action = random.randint(0, 1)
                else:
                    action = onlineQNetwork.select_action(torch.FloatTensor(state).unsqueeze(0))
                next_state, reward, done, _ = env.step(action)
                memory.append((state, next_state, action, reward, done))
                if len(memory) > 128:
                    learn_steps += 1
                    if learn_steps % UPDATE_STEPS == 0:
                        targetQNetwork.load_state_dict(onlineQNetwork.state_dict())
                    batch = random.sample(list(memory), BATCH)
                    s, s2, a, r, d = (torch.FloatTensor(np.array(v)) for v in zip(*batch))
                    with torch.no_grad():
                        y = r.unsqueeze(1) + (1 - d.unsqueeze(1)) * GAMMA * targetQNetwork(s2).max(1, keepdim=True)[0]
                    loss = F.mse_loss(onlineQNetwork(s).gather(1, a.long().unsqueeze(1)), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                if done:
                    break
                state = next_state
