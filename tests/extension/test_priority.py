"""Background threads run below the function's priority; the thread that answers `next` does not."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from lambdascope.extension import config
from lambdascope.extension.priority import lower_thread_priority

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="per-thread nice values are Linux's"
)


def test_only_the_calling_thread_is_lowered() -> None:
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, int] = {}

    def background() -> None:
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert lower_thread_priority(5)
        seen["lowered"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - before

        def child() -> None:  # threads started afterwards inherit it
            seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - before

        thread = threading.Thread(target=child)
        thread.start()
        thread.join(5)

    thread = threading.Thread(target=background)
    thread.start()
    thread.join(5)
    expected = min(5, 19 - main_before)
    assert seen == {"lowered": expected, "child": expected}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before


def test_zero_leaves_the_thread_alone() -> None:
    assert lower_thread_priority(0) is False


def test_background_nice_setting_is_bounded() -> None:
    assert config.load_config({})[0].background_nice == 10
    assert config.load_config({config.BACKGROUND_NICE: "0"})[0].background_nice == 0
    loaded, problems = config.load_config({config.BACKGROUND_NICE: "40"})
    assert loaded.background_nice == 10
    assert problems and config.BACKGROUND_NICE in problems[0]
