"""The learner home service: my courses and modules, one-click start, feedback and help requests."""
