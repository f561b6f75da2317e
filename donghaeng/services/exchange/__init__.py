"""The lab's nbgrader exchange: a hub service that receives, stamps and hands out assignment files.

Learners never write where graders read: their servers upload through nbgrader's own ``Exchange*``
steps (``client.py``, configured with ``c.ExchangeFactory``) to the ``exchange`` hub service
(``app.py``), which identifies them by their hub token, keeps everything in its private folder
(``store.py``) and unpacks only regular files within limits (``archive.py``).  No shared filesystem is
needed, so local, Docker and Swarm learners use the same path.
"""
