"""The host_state action plugin: deferred calls are queued in a host fact and sent with the next call."""

import os
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.selfhosted.gitpod_k3s.plugins.action import host_state as action
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_state

RUN = 4242
RUN_ID = action._run_id  # before the autouse fixture replaces it
QUEUE_FACT = action.QUEUE_FACT
PKG = {"packages": [{"name": "containerd"}]}
FILES = {"files": [{"path": "/etc/containerd/config.toml", "content": "version = 2\n"}]}


def make_action(args):
    """An ActionModule built as ansible-core's unit tests build one: mocks for all but the task's args."""
    task = MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = False
    plugin = action.ActionModule(task, MagicMock(), MagicMock(), MagicMock(), MagicMock(), MagicMock())
    plugin._execute_module = MagicMock(return_value={"changed": True, "changes": ["x"]})
    return plugin


def queued(calls, run=RUN):
    return {"ansible_facts": {QUEUE_FACT: {"run": run, "calls": calls}}}


@pytest.fixture(autouse=True)
def run_id(monkeypatch):
    monkeypatch.setattr(action, "_run_id", lambda: RUN)


def test_run_id_is_the_parent_process():
    assert RUN_ID() == os.getppid()


@pytest.mark.parametrize("defer", [True, "yes", "true"])
def test_deferred_call_is_queued_not_sent(defer):
    plugin = make_action(dict(PKG, defer=defer))
    result = plugin.run(task_vars={})
    assert result["deferred"] is True and result["queued"] == 1 and result["changed"] is False
    assert result["ansible_facts"] == {QUEUE_FACT: {"run": RUN, "calls": [PKG]}}
    plugin._execute_module.assert_not_called()


def test_second_deferred_call_adds_to_the_queue():
    task_vars = queued([PKG])
    result = make_action(dict(FILES, defer=True)).run(task_vars=task_vars)
    assert result["queued"] == 2 and result["ansible_facts"][QUEUE_FACT]["calls"] == [PKG, FILES]
    assert task_vars["ansible_facts"][QUEUE_FACT]["calls"] == [PKG]  # the old fact is not changed in place


def test_call_sends_the_queue_merged_with_its_own_args_and_clears_it():
    queue = [PKG, {"services": [{"name": "containerd"}], "swap_off": True}]
    own = {"packages": [{"name": "curl"}], "services": [{"name": "chrony"}]}
    plugin = make_action(dict(own, defer=False))
    result = plugin.run(task_vars=queued(queue))
    plugin._execute_module.assert_called_once()
    kwargs = plugin._execute_module.call_args.kwargs
    assert kwargs["module_name"] == "selfhosted.gitpod_k3s.host_state"
    assert kwargs["module_args"] == host_state.merge_specs(queue + [own])
    assert kwargs["module_args"]["packages"] == [{"name": "containerd"}, {"name": "curl"}]
    assert result["merged_calls"] == 3 and result["changed"] is True and result["changes"] == ["x"]
    assert result["ansible_facts"][QUEUE_FACT] == {"run": RUN, "calls": []}


def test_call_without_a_queue_sends_its_own_args():
    plugin = make_action(FILES)
    result = plugin.run(task_vars={})
    assert plugin._execute_module.call_args.kwargs["module_args"] == FILES
    assert result["merged_calls"] == 1 and "ansible_facts" not in result


def test_queue_of_another_run_is_ignored():
    plugin = make_action(FILES)
    result = plugin.run(task_vars=queued([PKG], run=RUN + 1))
    assert plugin._execute_module.call_args.kwargs["module_args"] == FILES
    assert result["merged_calls"] == 1


def test_deferred_call_after_a_queue_of_another_run_starts_a_new_queue():
    result = make_action(dict(FILES, defer=True)).run(task_vars=queued([PKG], run=RUN + 1))
    assert result["queued"] == 1 and result["ansible_facts"][QUEUE_FACT] == {"run": RUN, "calls": [FILES]}


def test_queue_that_cannot_be_merged_fails_the_task():
    settings = {"sysctl": {"settings": {"net.ipv4.ip_forward": 1}}}
    plugin = make_action(settings)
    with pytest.raises(AnsibleActionFail, match="both set sysctl"):
        plugin.run(task_vars=queued([settings]))
    plugin._execute_module.assert_not_called()


def test_defer_must_be_a_boolean():
    plugin = make_action(dict(PKG, defer="maybe"))
    with pytest.raises(AnsibleActionFail, match="defer: .*not a valid boolean.*allowed: true, false"):
        plugin.run(task_vars={})
    plugin._execute_module.assert_not_called()


@pytest.mark.parametrize("defer", [True, False])
def test_both_paths_go_through_action_base_run(defer):
    plugin = make_action(dict(PKG, defer=defer))
    plugin._task.async_val = 30  # ActionBase.run refuses async for this action
    with pytest.raises(AnsibleActionFail, match="does not support async"):
        plugin.run(task_vars={})
    plugin._execute_module.assert_not_called()
