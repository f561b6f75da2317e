"""Stand-ins for the model client in widget tests (the real model is tested in test_model_client)."""


class ExplodingClient:
    """Any use of the model fails the test: proves nothing touches it before a button is pressed."""

    name = "never"
    context_length = 10

    def __getattribute__(self, item):
        if item in ("tokenize", "complete", "next_tokens"):
            raise AssertionError(f"model used before the button was pressed: {item}")
        return object.__getattribute__(self, item)
