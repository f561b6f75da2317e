"""The lab's JupyterHub services, each its own process and account: model, home (learner
pages), dashboard (trainers), exchange, certificates, class-prepare.

Each service package's ``hub`` module is what the hub needs to run it (service entry,
roles); ``runtime`` is how every one of them serves.
"""
