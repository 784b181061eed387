"""host_prep_ufw=true on gk3s-prep-3: cluster ports open to the cluster's nodes, the rest denied.

Traffic goes only between the scenario's own containers.
"""

import re

import pytest

from conftest import other_host

testinfra_hosts = ["ansible://gk3s-prep-3"]

CONNECT = "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' {} {}"


def test_ufw_active_with_default_deny(host):
    out = host.check_output("ufw status verbose")
    assert "Status: active" in out
    assert "Default: deny (incoming), allow (outgoing), allow (routed)" in out


def test_cluster_ports_open_to_every_node(host):
    out = host.check_output("ufw status")
    for name in ("gk3s-prep-1", "gk3s-prep-2", "gk3s-prep-3"):
        addr = other_host(name).interface("eth0").addresses[0]
        assert re.search(rf"^179,2379:2380,5473,6443,10250/tcp\s+ALLOW\s+{re.escape(addr)}\s", out, re.M), out
        assert re.search(rf"^4789,51820:51821/udp\s+ALLOW\s+{re.escape(addr)}\s", out, re.M), out
    for cidr in ("10.42.0.0/16", "10.43.0.0/16"):
        assert re.search(rf"^Anywhere\s+ALLOW\s+{re.escape(cidr)}\s", out, re.M), out
    assert re.search(r"^22,80,443/tcp\s+ALLOW\s+Anywhere\s", out, re.M), out


@pytest.fixture(scope="module")
def listeners(host):
    """Plain TCP listeners on an opened cluster port and on a port no rule opens."""
    for port in (6443, 7777):
        host.run(f"systemctl stop ufwtest-{port}.service")
        host.check_output(f"systemd-run --unit=ufwtest-{port} python3 -m http.server --bind 0.0.0.0 {port}")
    for port in (6443, 7777):
        host.run(f"timeout 10 sh -c 'until ss -ltn | grep -q :{port}; do sleep 0.2; done'")
    yield host.interface("eth0").addresses[0]
    for port in (6443, 7777):
        host.run(f"systemctl stop ufwtest-{port}.service")


def test_node_reaches_cluster_port_but_not_others(listeners):
    peer = other_host("gk3s-prep-2")
    assert peer.run(CONNECT.format(listeners, 6443)).rc == 0
    blocked = peer.run(CONNECT.format(listeners, 7777))
    assert blocked.rc != 0 and ("timed out" in blocked.stderr or "TimeoutError" in blocked.stderr), blocked.stderr
