"""DQN update with a target network: Huber TD loss on a replay batch, AdamW(amsgrad), value clipping, soft update.

Source: pytorch/tutorials, intermediate_source/reinforcement_q_learning.py (DQN, optimize_model: SmoothL1Loss,
clip_grad_value_(100), target_net soft update with TAU = 0.005); transitions are random stand-ins for CartPole.
Finds: nothing
"""
import torch
from torch import nn

from probes import Probe

N_OBS, N_ACTIONS, BATCH, GAMMA, TAU, LR = 4, 2, 32, 0.99, 0.005, 1e-4


class DQN(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Linear(N_OBS, 128)
        self.layer2 = nn.Linear(128, 128)
        self.layer3 = nn.Linear(128, N_ACTIONS)

    def forward(self, x):
        return self.layer3(torch.relu(self.layer2(torch.relu(self.layer1(x)))))


def train(run_dir):
    torch.manual_seed(0)
    policy_net, target_net = DQN(), DQN()
    target_net.load_state_dict(policy_net.state_dict())
    optimizer = torch.optim.AdamW(policy_net.parameters(), lr=LR, amsgrad=True)
    criterion = nn.SmoothL1Loss()
    with Probe(policy_net, optimizer, run_dir=run_dir) as probe:
        for step in range(30):
            state = torch.randn(BATCH, N_OBS)
            action = torch.randint(0, N_ACTIONS, (BATCH, 1))
            reward = torch.ones(BATCH)
            next_state = state + 0.1 * torch.randn(BATCH, N_OBS)
            done = torch.rand(BATCH) < 0.05
            state_action_values = policy_net(state).gather(1, action)
            with torch.no_grad():
                next_values = target_net(next_state).max(1).values * (~done)
            expected = reward + GAMMA * next_values
            loss = criterion(state_action_values, expected.unsqueeze(1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
            optimizer.step()
            target_sd, policy_sd = target_net.state_dict(), policy_net.state_dict()
            for key in policy_sd:                      # theta' <- tau * theta + (1 - tau) * theta'
                target_sd[key] = policy_sd[key] * TAU + target_sd[key] * (1 - TAU)
            target_net.load_state_dict(target_sd)
