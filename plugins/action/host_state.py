# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Action plugin of the host_state module: runs it, or queues the call for the next one.

With ``defer: true`` nothing is sent to the host: the arguments are kept in a host fact, and the
next host_state call on that host (without ``defer``) sends them merged with its own, in order.
The host layer of playbooks/prepare.yml is so one round trip per host: the containerd role
queues, host_prep sends both. Documentation: plugins/modules/host_state.py.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_state

# The queue lives in a host fact; it names the ansible-playbook process that wrote it, so that
# a queue left in a persistent fact cache by an interrupted run is never sent by a later one.
QUEUE_FACT = "gitpod_k3s_host_state_queue"


def _run_id():
    # Task workers are forked by the ansible-playbook process: its PID identifies the run.
    return os.getppid()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        args = dict(self._task.args)
        try:
            defer = boolean(args.pop("defer", False), strict=True)
        except TypeError as exc:
            raise AnsibleActionFail(f"defer: {exc}; allowed: true, false") from exc
        facts = task_vars.get("ansible_facts") or {}
        stored = facts.get(QUEUE_FACT) or {}
        queue = list(stored.get("calls") or []) if stored.get("run") == _run_id() else []

        if defer:
            result = super().run(tmp, task_vars)
            queue.append(args)
            result.update(changed=False, deferred=True, queued=len(queue),
                          msg=f"queued: sent with the next host_state call on this host ({len(queue)} waiting)",
                          ansible_facts={QUEUE_FACT: {"run": _run_id(), "calls": queue}})
            return result

        result = super().run(tmp, task_vars)
        try:
            merged = host_state.merge_specs(queue + [args])
        except host_state.HostStateError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        result.update(self._execute_module(module_name="selfhosted.gitpod_k3s.host_state",
                                           module_args=merged, task_vars=task_vars))
        result["merged_calls"] = len(queue) + 1
        if queue:
            result.setdefault("ansible_facts", {})[QUEUE_FACT] = {"run": _run_id(), "calls": []}
        return result
