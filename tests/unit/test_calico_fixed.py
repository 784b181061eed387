"""A running Calico keeps its IP pool's CIDR and block size (roles/calico/tasks/fixed.yml).

The role's task file runs in ansible-playbook; `kubectl` is the TEST DOUBLE tests/unit/kubectl_double.py
holding the Installation the operator would run with. No API server or operator runs.
"""

from __future__ import annotations

import pytest

from double_playbook import KUBECTL, include, run

CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "installations.operator.tigera.io"},
       "status": {"conditions": [{"type": "Established", "status": "True"}]}}


def installation(cidr="10.42.0.0/16", block=26):
    return {"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
            "spec": {"calicoNetwork": {"ipPools": [{"cidr": cidr, "blockSize": block, "encapsulation": "VXLAN"}]}}}


def check(tmp_path, objects, cidr="10.42.0.0/16", block=26):
    ours = {"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
            "spec": {"calicoNetwork": {"ipPools": [{"cidr": cidr, "blockSize": block}]}}}
    proc, _unused, _state = run(tmp_path, [include("calico", "fixed")],
                                {"__calico_kubectl": KUBECTL, "__calico_installation": ours}, {"objects": objects})
    return proc, " ".join(proc.stdout.split())


@pytest.mark.parametrize("change", [{"cidr": "10.52.0.0/16"}, {"block": 24}], ids=["cidr", "block_size"])
def test_a_new_pool_under_a_running_calico_is_refused(tmp_path, change):
    proc, out = check(tmp_path, {"customresourcedefinitions": [CRD], "installations": [installation()]}, **change)
    assert proc.returncode != 0
    assert "No manifest was written. The running Calico's IP pool is 10.42.0.0/16 with blocks of /26" in out
    assert "calico_ipv4_pool_cidr, calico_block_size" in out


@pytest.mark.parametrize("objects", [{}, {"customresourcedefinitions": [CRD]},
                                     {"customresourcedefinitions": [CRD], "installations": [installation()]}],
                         ids=["no_crd_yet", "no_installation_yet", "the_same_pool"])
def test_a_first_install_and_an_unchanged_pool_go_on(tmp_path, objects):
    proc, out = check(tmp_path, objects)
    assert proc.returncode == 0, out[-2000:]
