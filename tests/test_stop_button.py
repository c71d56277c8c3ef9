"""The Stop button (widgets.stop): clicks reach Python, and while a foreground run is marked busy the
front end interrupts the kernel; train() turns that interrupt into a clean stop. The browser half is in
tests/e2e/test_training_browser.py."""
from workbench.train import Callback
from workbench.widgets.stop import StopButton, kernel_id
from workbench.widgets.training import TrainingPanel

SMALL = dict(steps=3, batch_size=2, seq_len=16, eval_every=0, log_every=1, warmup=1, sample_max_new_tokens=4,
             hidden_size=32, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32)


def test_click_message_reaches_the_handlers():
    b = StopButton()
    seen = []
    b.on_click(lambda button: seen.append(button))
    b._on_msg(b, {"event": "click"}, [])
    b._on_msg(b, {"event": "hover"}, [])
    assert seen == [b]
    assert kernel_id() == "" and b.kernel_id == ""           # no kernel here: the front end will not interrupt
    assert "api/kernels/${id}/interrupt" in b._esm and "X-XSRFToken" in b._esm


def test_foreground_run_marks_the_button_busy_only_while_it_trains(tok, texts):
    panel = TrainingPanel("busy", display_now=False)
    seen = []

    class Watch(Callback):
        def on_start(self, state):
            seen.append(panel.stop_button.busy)
    panel.run("dense-nano", texts, tokenizer=tok, callbacks=[Watch()], **SMALL)
    assert seen == [True] and panel.stop_button.busy is False and panel.stop_button.disabled


def test_interrupt_during_training_is_a_clean_stop(tok, texts):
    panel = TrainingPanel("interrupt", display_now=False)

    class Interrupt(Callback):             # what the kernel does when the front end asks the server to interrupt
        def on_log(self, state, rows):
            if state.step == 2:
                raise KeyboardInterrupt
    res = panel.run("dense-nano", texts, tokenizer=tok, callbacks=[Interrupt()], **{**SMALL, "steps": 50})
    assert res.stop_reason.startswith("interrupted after step") and int(res.history.step.max()) < 50
    assert "stopped: interrupted" in panel.status.value
    panel.request_stop()                   # a click that arrives after the run: ignored
    assert "stopping" not in panel.status.value


def test_a_panel_runs_again_with_its_stop_button_enabled(tok, texts):
    """A dashboard's "train" button may call panel.run() again: the Stop button, disabled when a run ends, is
    enabled again while the next one trains."""
    panel = TrainingPanel("again", display_now=False)
    seen = []

    class Watch(Callback):
        def on_log(self, state, rows):
            seen.append(panel.stop_button.disabled)
    panel.run("dense-nano", texts, tokenizer=tok, callbacks=[Watch()], **SMALL)
    assert panel.stop_button.disabled
    panel.run("dense-nano", texts, tokenizer=tok, callbacks=[Watch()], **SMALL)
    assert seen and not any(seen) and panel.stop_button.disabled
