"""describe_model_failure: one readable line for whatever TensorFlow or the machine throws."""
from __future__ import annotations

from cxrviewer.core.model.failures import MAX_DETAIL_CHARS, describe_model_failure, is_out_of_memory


class ResourceExhaustedError(Exception):
    """Named like tensorflow.errors.ResourceExhaustedError (GPU out of memory)."""


def test_a_bare_memory_error_says_what_happened_and_what_to_do() -> None:
    message = describe_model_failure("the AI result could not be computed", MemoryError())
    assert message.startswith("the AI result could not be computed: the computer (or the GPU) ran out of memory.")
    assert "CXRVIEWER_FORCE_CPU=1" in message and "MemoryError" not in message


def test_tensorflow_out_of_memory_is_recognised_by_name_and_keeps_its_first_line() -> None:
    exc = ResourceExhaustedError("OOM when allocating tensor with shape[1,1024,28,28]\n\t [[node conv5]]\nHint: ...")
    assert is_out_of_memory(exc)
    message = describe_model_failure("the sanity check failed", exc)
    assert "ran out of memory (OOM when allocating tensor with shape[1,1024,28,28])" in message
    assert "node conv5" not in message and "\n" not in message


def test_other_errors_keep_their_type_and_only_the_first_line_shortened() -> None:
    long_first = "x" * 1000
    exc = RuntimeError(f"\n  {long_first}\nGraph execution error:\n" + "context\n" * 500)
    message = describe_model_failure("the AI model could not be loaded", exc)
    assert message.startswith("the AI model could not be loaded: RuntimeError: xxx")
    assert message.endswith("… (details in the log)") and "\n" not in message
    assert len(message) < MAX_DETAIL_CHARS + 100
    assert not is_out_of_memory(exc)
    assert describe_model_failure("x", ValueError()) == "x: ValueError: no details (details in the log)"
