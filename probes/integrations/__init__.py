"""ForgeScope inside the trainers people use: a callback that puts a Probe on the model and optimizers the
trainer built, and feeds it what only the trainer knows (the loss it computed, the learning rate, when a batch
begins, when a validation pass runs).

    from probes.integrations.lightning import ForgeScopeCallback        # lightning or pytorch_lightning 2.x
    from probes.integrations.transformers import ForgeScopeCallback     # the Hugging Face Trainer

Each is an optional extra (`pip install .[lightning]`, `pip install .[transformers]`); importing one without
its library says which package to install.
"""
