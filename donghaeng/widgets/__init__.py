"""Learner widgets (ipywidgets 8): Korean labels, keyboard-usable, no code typing needed."""

from .choice import ChoiceQuestion, choice_question

__all__ = ["ChoiceQuestion", "choice_question"]
