"""The ``donghaeng`` command (admins and trainers). It may import everything; nothing imports it.
"""
