"""donghaeng.toolkit.widgets.trainer: the tiny trainer widget trains, plots, samples, stops and fails kindly."""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import warnings

import ipywidgets as widgets
import pytest

from donghaeng.toolkit import tinylm
from donghaeng.toolkit.tinylm import known_pair_share
from donghaeng.toolkit.widgets import trainer as trainer_widget
from donghaeng.toolkit.widgets.trainer import TinyTrainer, tiny_trainer

FEW_STEPS = 150  # enough for visible words; the default (300) is covered by test_tinylm


def make(**kwargs) -> TinyTrainer:
    kwargs.setdefault("background", False)
    widget = tiny_trainer(**kwargs)
    assert isinstance(widget, TinyTrainer) and isinstance(widget, widgets.Widget)
    widget.steps.value = FEW_STEPS
    return widget


def png_outputs(widget: TinyTrainer) -> list[bytes]:
    images = []
    for output in widget.plot.outputs:
        data = output.get("data", {})
        if "image/png" in data:
            images.append(base64.b64decode(data["image/png"]))
    return images


@pytest.fixture(scope="module")
def finished():
    widget = make()
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        widget.start_button.click()
    return widget, [str(w.message) for w in records]


def test_every_control_is_labelled_and_keyboard_usable():
    widget = make()
    controls = [widget.learning_rate, widget.model_size, widget.steps, widget.context_length,
                widget.temperature, widget.prompt]
    for control in controls:
        assert control.description.strip(), control
        assert control.tooltip and control.tooltip.strip(), control.description
    # Native widgets only (sliders, selects, text, buttons): all reachable and operable by keyboard.
    for button in (widget.start_button, widget.stop_button, widget.resample_button):
        assert isinstance(button, widgets.Button) and button.description and button.tooltip
    assert widget.start_button.description == "학습 시작"
    assert widget.stop_button.description == "멈추기"
    assert widget.stop_button.disabled and widget.resample_button.disabled
    assert not widget.start_button.disabled
    assert 'role="status"' in widget.status.value


def test_start_button_produces_plot_and_improving_samples(finished):
    widget, _ = finished
    assert widget.message.startswith("학습을 마쳤어요!")
    assert widget.trainer.step == FEW_STEPS
    images = png_outputs(widget)
    assert len(images) == 1 and images[0].startswith(b"\x89PNG")
    assert widget.plot_count >= 5, "the plot is redrawn while training"
    alt = widget.plot.outputs[0]["data"]["text/plain"]
    assert alt.startswith("손실 그래프")
    assert list(widget.samples) == ["처음", "중간", "끝"]
    assert all(text.startswith("안녕") for text in widget.samples.values())
    first, end = (known_pair_share(widget.samples[k][2:]) for k in ("처음", "끝"))
    assert end > first + 0.4, widget.samples
    for label in ("처음", "중간", "끝", "모델이 만든 글"):
        assert label in widget.sample_box.value
    # Back to idle: controls usable again.
    assert not widget.running
    assert not widget.start_button.disabled and not widget.learning_rate.disabled
    assert widget.stop_button.disabled and not widget.resample_button.disabled


def test_plot_has_no_missing_hangul_glyphs(finished):
    _, messages = finished
    assert not [m for m in messages if "missing" in m.lower()], messages


def test_resample_uses_current_temperature(finished):
    widget, _ = finished
    widget.temperature.value = 1.3
    widget.resample_button.click()
    assert widget.samples["다시 만든 글"].startswith("안녕")
    assert "온도 1.3" in widget.sample_box.value
    widget.resample_button.click()  # a new text each time, and never a crash


def test_resample_before_training_asks_to_train_first():
    widget = make()
    widget.resample()
    assert widget.message == trainer_widget.MSG_TRAIN_FIRST


def test_huge_learning_rate_shows_korean_message_not_exception():
    widget = make()
    widget.learning_rate.value = 10.0
    widget.start_button.click()  # must not raise
    assert widget.message.startswith(tinylm.MSG_UNSTABLE)
    assert "학습률을 낮춰 보세요" in widget.status.value
    assert 'role="alert"' in widget.status.value
    assert not widget.running and not widget.start_button.disabled
    assert png_outputs(widget), "the loss so far is still plotted"
    widget.learning_rate.value = 0.01  # and the learner can simply try again
    widget.steps.value = 50
    widget.start_button.click()
    assert widget.message.startswith("학습을 마쳤어요!")


def test_unexpected_error_shows_friendly_message_without_traceback(monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("internal detail the learner must not see")

    monkeypatch.setattr(tinylm.Trainer, "train", boom)
    widget = make()
    with caplog.at_level(logging.ERROR):
        widget.start_button.click()
    assert widget.message == trainer_widget.MSG_FAILED
    assert "Traceback" not in widget.status.value and "internal detail" not in widget.status.value
    assert "internal detail" in caplog.text, "the real error goes to the log for the instructor"
    assert not widget.running and not widget.start_button.disabled


def test_background_training_can_be_stopped():
    widget = make(background=True)
    widget.steps.value = 1000
    widget.start_button.click()
    try:
        assert widget.running and widget.start_button.disabled and not widget.stop_button.disabled
        widget.start()  # a second start while running is refused kindly
        assert widget.message == trainer_widget.MSG_ALREADY_RUNNING
        deadline = time.monotonic() + 60
        while (widget.trainer is None or widget.trainer.step < 3) and time.monotonic() < deadline:
            time.sleep(0.02)
        widget.stop_button.click()
    finally:
        widget.stop()
        assert widget.wait(120)
    assert widget.message.startswith("학습을 멈췄어요")
    assert 3 <= widget.trainer.step < 1000
    assert "끝" in widget.samples
    assert not widget.start_button.disabled and widget.stop_button.disabled


def test_text_fallback_for_autograde(finished):
    widget, _ = finished
    bundle = widget._repr_mimebundle_()
    assert bundle["text/plain"].startswith("[작은 언어 모델 학습기] 학습을 마쳤어요!")


@pytest.mark.parametrize(("number", "expected"), [("0.50", "0.50으로"), ("1.23", "1.23으로"),
                                                  ("0.49", "0.49로"), ("2.31", "2.31로")])
def test_korean_particle_after_numbers(number, expected):
    assert trainer_widget._with_ro(number) == expected


def test_stop_button_click_reaches_a_real_kernel_while_training(tmp_path):
    """In an ipykernel, the 멈추기 click (a comm message) is handled while the 학습 시작 run is going."""
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # A kernelspec for this very interpreter, whatever other python3 kernels the machine has.
    spec_dir = tmp_path / "kernels" / "donghaeng-test"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "test", "language": "python"}))
    km = KernelManager(kernel_name="donghaeng-test",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()

    def execute(code: str) -> str:
        msg_id = kc.execute(code)
        texts = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(texts)
        raise AssertionError(f"no reply to {code!r}")

    def click(model_id: str) -> None:
        content = {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
        kc.shell_channel.send(kc.session.msg("comm_msg", content))

    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        ids = execute(
            "from donghaeng.toolkit.widgets.trainer import tiny_trainer\n"
            "w = tiny_trainer()\nw.steps.value = 1000\n"
            "print(w.start_button.model_id, w.stop_button.model_id)"
        )
        start_id, stop_id = ids.split()
        click(start_id)
        # Wait (by asking the kernel, which must stay responsive) until training has begun.
        deadline = time.monotonic() + 60
        while execute("print(w.trainer is not None and w.trainer.step >= 3)").strip() != "True":
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        click(stop_id)
        result = execute("print(w.wait(120), w.trainer.step, w.message)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    finished, step, message = result.split(maxsplit=2)
    assert finished == "True"
    assert 3 <= int(step) < 1000
    assert message.startswith("학습을 멈췄어요")
