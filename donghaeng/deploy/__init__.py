"""Getting the lab onto a machine and keeping it there, run as root from the CLI: installing
the checkout, images without a registry, Kubernetes values, provisioning, backup and restore.
"""
