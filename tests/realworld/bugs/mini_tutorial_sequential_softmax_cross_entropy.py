"""A PyTorch mini-tutorial's MNIST MLP ends its nn.Sequential in a Softmax layer and trains it with CrossEntropyLoss.

build_model() assembles the network with `add_module` calls (linear, ReLU, dropout, ... linear) and a last
`add_module("softmax", torch.nn.Softmax())`; the loss is `torch.nn.CrossEntropyLoss`, which applies
log-softmax itself. The loss therefore sees probabilities as if they were logits: softmax runs twice, the
loss is squashed near log(10) and the gradients are weak. The reader asked whether the softmax layer could
be dropped; the author checked that CrossEntropyLoss computes softmax internally and removed it from every
tutorial. The tutorial's train() also calls `model.forward(x)` and `loss.forward(fx, y)` directly, which
skips the modules' hooks.

Source: https://github.com/vinhkhuc/PyTorch-Mini-Tutorials/issues/1
Finds: loss-input-mismatch, forward-called-directly @ (the model)
"""
import torch

N_FEATURES, N_CLASSES = 784, 10


def build_model(input_dim=N_FEATURES, output_dim=N_CLASSES):
    model = torch.nn.Sequential()
    model.add_module("linear_1", torch.nn.Linear(input_dim, 512, bias=False))
    model.add_module("relu_1", torch.nn.ReLU())
    model.add_module("dropout_1", torch.nn.Dropout(0.2))
    model.add_module("linear_2", torch.nn.Linear(512, 512, bias=False))
    model.add_module("relu_2", torch.nn.ReLU())
    model.add_module("dropout_2", torch.nn.Dropout(0.2))
    model.add_module("linear_3", torch.nn.Linear(512, output_dim, bias=False))
    model.add_module("softmax", torch.nn.Softmax())          # the bug: CrossEntropyLoss applies softmax itself
    return model


def make_batch(batch_size: int):
    return torch.rand(batch_size, N_FEATURES), torch.randint(0, N_CLASSES, (batch_size,))


loss = torch.nn.CrossEntropyLoss()


def make_optimizer(model):
    return torch.optim.Adam(model.parameters())


def train_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    fx = model.forward(x)
    output = loss.forward(fx, y)
    output.backward()
    optimizer.step()
    return output
