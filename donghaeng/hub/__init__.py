"""What runs inside the JupyterHub process: its configuration from lab.toml, the authenticator,
roles, spawners (local accounts, Docker, Swarm) and the class-start queue.
"""
