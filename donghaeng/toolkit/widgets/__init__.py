"""Learner widgets (ipywidgets 8): Korean labels, keyboard-usable, no code typing needed.

Names are imported on first use (PEP 562), so a notebook that needs one choice question does not
pay for torch or matplotlib; nothing loads the language model until a learner presses a button.
"""

from importlib import import_module

_WHERE = {
    "ChoiceQuestion": "choice", "choice_question": "choice",
    "CheckboxQuestion": "quiz", "NumberQuestion": "quiz", "checkbox_question": "quiz", "number_question": "quiz",
    "show_saved": "quiz",
    "NextTokenViewer": "next_token", "next_token_viewer": "next_token",
    "PromptPlayground": "playground", "prompt_playground": "playground",
    "BiasProbe": "responsible", "HallucinationCheck": "responsible", "PiiMaskingExercise": "responsible",
    "bias_probe": "responsible", "hallucination_check": "responsible", "hallucination_score": "responsible",
    "pii_masking_exercise": "responsible", "remaining_pii": "responsible",
    "TokenizerExplorer": "tokens", "tokenizer_explorer": "tokens",
    "TinyTrainer": "trainer", "tiny_trainer": "trainer",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'donghaeng.toolkit.widgets' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
