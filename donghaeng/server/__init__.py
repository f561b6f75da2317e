"""What runs in a learner's single-user Jupyter server (a server extension: Korean messages,
saving, the learner toolbar's API).
"""
