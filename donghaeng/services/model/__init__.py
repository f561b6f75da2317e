"""The shared language model service (JupyterHub-managed service ``model``).

One OpenAI-compatible HTTP API in front of the lab's language models, so a class of learners
shares one loaded model instead of loading it into every kernel:

* :mod:`.app`        tornado app: auth (JupyterHub tokens), endpoints, streaming pass-through
* :mod:`.engine`     supervised llama.cpp ``llama-server`` per GGUF, supervised :mod:`.hfworker`
                     (transformers) per Hugging Face folder; external OpenAI-compatible URLs
* :mod:`.hfconvert`  GGUF -> Hugging Face folder (and a tiny random model for tests)
* :mod:`.scheduler`  fairness: per-person concurrency and token rate, bounded priority queue
* :mod:`.validate`   request checking (Korean errors), :mod:`.errors` the error objects
* :mod:`.usage`      per-request usage log (JSON lines) and totals per course/role/person
* :mod:`.metrics`    Prometheus metrics, :mod:`.hub` the hub side (account, service, roles)
* :mod:`.build`      builds ``llama-server`` from the llama-cpp-python sdist on PyPI

Importing this package loads nothing heavy; ``python -m donghaeng.services.model`` runs the service.
See docs/model-service.md.
"""
