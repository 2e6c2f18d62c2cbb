"""The task table: every built-in task is found by name, from its own module, and no import
elsewhere is needed first; a user's task joins by name and cannot take a built-in's."""

import subprocess
import sys

import pytest

from netshrink.bench import tasks
from netshrink.errors import NetshrinkError


@pytest.mark.parametrize("name", sorted(tasks.BUILTIN))
def test_every_builtin_task_comes_from_its_module_with_check_and_resolve(name):
    found = tasks.get(name)
    assert found.run.__module__ == tasks.BUILTIN[name] == tasks.module_of(name)
    assert found.check is not None
    if name != "train":
        assert found.resolve is not None


def test_a_fresh_process_finds_a_task_without_importing_its_method_first():
    code = ("import sys; from netshrink.bench import tasks; "
            "assert 'netshrink.bench.tasks.distill' not in sys.modules; "
            "print(tasks.get('kd_distill').run.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "distill_student"


def test_user_tasks_join_by_name_but_not_as_a_builtin():
    tasks.task("user-test-task", resolve=lambda p: {"x": 1, **p})(lambda spec, workdir: {})
    assert "user-test-task" in tasks.names()
    assert tasks.resolve("user-test-task", {}) == {"x": 1}
    with pytest.raises(NetshrinkError, match="built in"):
        tasks.task("prune")
    with pytest.raises(NetshrinkError, match="unknown task 'nope'; choose from"):
        tasks.get("nope")
