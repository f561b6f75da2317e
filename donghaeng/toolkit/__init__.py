"""What runs in a learner's kernel: widgets, the model client, the tiny trainer, plots.

Learners' code can import all of it; it holds no secret and reaches the lab only through
the model and home services with the learner's own token.
"""
