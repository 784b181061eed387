"""TEST DOUBLE of the k3s binary for the node day-two scenarios (tests/integration/test_node_day_two.py).

k3s never runs here. The scenario installs, as /usr/local/bin/k3s, a three-line stub that imports
this file from the directory every test container mounts at /cluster/lib. It stands in for k3s in
the places the collection meets it, and each behaviour it models follows an upstream file of
k3s-io/k3s (read for this double; the citations name file and function):

- ``k3s server`` / ``k3s agent`` as a systemd service (Type=notify): reads /etc/rancher/k3s/config.yaml
  and the token file, joins the cluster, registers the Node and reports READY=1 to systemd
  (pkg/cli/server/server.go run and pkg/agent/run.go run call systemd.SdNotify(READY=1)), then
  runs until SIGTERM. Every start is logged with what it read (config.yaml, registries.yaml, token,
  version), so a test can tell whether the running k3s has read the files on disk, and how many
  restarts a run made, on which node, and whether two overlapped.
- Tokens (pkg/clientaccess/token.go): a full token is ``K10<sha256 of the cluster CA>::server:<password>``
  and is refused when the hash differs ("token CA hash does not match the Cluster CA certificate
  hash"); a short token is the password alone. Every server keeps the full token in
  /var/lib/rancher/k3s/server/token (pkg/daemons/control/deps/deps.go).
- Embedded etcd membership (pkg/etcd/etcd.go): a server's member is named ``<node>-<8 hex>``
  (setName), kept in server/db/etcd/name; a server joining with a node name that another member
  already carries is refused ("duplicate node name found, please use a unique name for this node",
  join).
- Node passwords (pkg/agent/config/config.go ensureNodePassword; pkg/nodepassword/nodepassword.go
  Ensure): the node keeps a random password in /etc/rancher/node/password, the servers keep its hash
  in the Secret ``<node>.node-password.k3s`` in kube-system; a node whose password does not match is
  refused ("Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password'
  may not match server node-passwd entry, try enabling a unique node name with the --with-node-id
  flag").
- Registration (pkg/daemons/agent/agent_linux.go kubeletArgs passes ``register-with-taints``, which
  the kubelet applies only when it creates the Node, kubelet_node_status.go initialNode): taints are
  set once, at registration. Labels (pkg/agent/run.go configureNode, updateMutableLabels:
  labels.Merge): the ``node-label`` values are written again at every start, over values set with
  kubectl, and no label is ever removed.
- What a deletion of a Node sets off (``k3s kubectl delete node``): the managed-etcd-controller
  removes a server's member (pkg/etcd/member_controller.go onRemove), and the node's password Secret
  is deleted (pkg/node/controller.go onRemove; the nodepassword controller's owner reference in later
  releases).
- k3s writes its containerd's config.toml at start (pkg/agent/containerd/config.go); here the shape
  without a CNI section (flannel off), the one molecule/k3s_install tests for both shapes.

What it does not model: the API server itself (``k3s kubectl`` is tests/unit/kubectl_double.py over
the shared state file), etcd's data, pods, the network. Calico's operator does not run: the
scenario seeds its status objects; the calico-node DaemonSet's counts follow the Nodes, one pod per
Node as the DaemonSet controller schedules them.

State: /cluster/state.json (the kubectl double's format, plus ``k3s``: the cluster's token and CA
hash, the etcd members, the start log, faults a test plants), guarded by /cluster/state.lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time

import yaml  # the controller's PyYAML, mounted beside this file

import kubectl_double

CLUSTER = os.environ.get("K3S_DOUBLE_CLUSTER", "/cluster")
STATE = os.path.join(CLUSTER, "state.json")
LOCK = os.path.join(CLUSTER, "state.lock")
CONFIG = "/etc/rancher/k3s/config.yaml"
REGISTRIES = "/etc/rancher/k3s/registries.yaml"
DATA = "/var/lib/rancher/k3s"
SERVER_TOKEN = f"{DATA}/server/token"
ETCD_DIR = f"{DATA}/server/db/etcd"
NODE_PASSWORD = "/etc/rancher/node/password"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
CONTAINERD_CONFIG = f"{DATA}/agent/etc/containerd/config.toml"


@contextlib.contextmanager
def cluster_state():
    """The shared state, read and written under an exclusive lock."""
    with open(LOCK, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(STATE, encoding="utf-8") as handle:
                state = json.load(handle)
            yield state
            tmp = f"{STATE}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            os.replace(tmp, STATE)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sha(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        return ""


def _write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _fail(message):
    sys.stderr.write(f"level=fatal msg=\"{message}\"\n")
    sys.stderr.flush()
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# k3s kubectl


def kubectl(argv):
    """``k3s kubectl ...``: the kubectl double over the shared state; waits poll across processes."""
    words = argv[1:]
    waiting = "wait" in words
    timeout = 30.0
    for word in words:
        if word.startswith("--timeout="):
            timeout = float(word.split("=", 1)[1].rstrip("s") or 0)
    deadline = time.time() + timeout
    call = ["kubectl"] + [w for w in words if not (waiting and w.startswith("--timeout="))]
    if waiting:
        call.append("--timeout=0s")
    while True:
        with cluster_state() as state:
            double = kubectl_double.KubectlDouble(state.get("objects"), state.get("version"), flags=state.get("flags"))
            rc, out, err = double(call)
            state["objects"] = double.objects
            state.setdefault("calls", []).append(words)
            positional = _positional(words)
            if rc == 0 and positional[:1] == ["delete"] and positional[1:2] in (["node"], ["nodes"], ["no"]):
                for name in positional[2:]:
                    forget_node(state, name)
        if rc == 0 or not waiting or time.time() >= deadline:
            sys.stdout.write(out)
            sys.stderr.write(err)
            return rc
        time.sleep(0.5)


def _positional(words):
    """The words of a kubectl command line that are not flags (nor a flag's value)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--kubeconfig", "-n", "--namespace", "-o", "--output", "-l", "--selector"):
            skip = True
        elif not word.startswith("-"):
            out.append(word)
    return out


def forget_node(state, name):
    """A deleted Node: its etcd member (pkg/etcd/member_controller.go onRemove) and password Secret
    (pkg/node/controller.go onRemove) go too."""
    k3s = state.setdefault("k3s", {})
    members = k3s.setdefault("members", {})
    for member, node in list(members.items()):
        if node == name:
            del members[member]
    secret = f"{name}.node-password.k3s"
    state["objects"]["secrets"] = [s for s in state["objects"].get("secrets", [])
                                   if not (s["metadata"]["name"] == secret and s["metadata"].get("namespace") == "kube-system")]
    k3s.setdefault("events", []).append({"t": time.time(), "event": "forgotten", "node": name})


# --------------------------------------------------------------------------------------------
# k3s server / k3s agent


def _password(token):
    """The password part of a full or short token."""
    return token.split("::server:")[-1] if "::" in token else token


def _join(state, role, config, token, node):
    """The token checks, the cluster's creation or the etcd join; returns an error or ''."""
    k3s = state.setdefault("k3s", {})
    initialising = role == "server" and "server" not in config and not os.path.exists(f"{ETCD_DIR}/name")
    if initialising:
        # A server without data and without a server to join starts a new datastore: whatever cluster
        # the shared state held before is not this one (a full reset, then a fresh install).
        k3s.update(password=_password(token), ca_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(), members={})
        state["objects"]["nodes"] = []
        state["objects"]["secrets"] = [s for s in state["objects"].get("secrets", [])
                                       if not s["metadata"]["name"].endswith(".node-password.k3s")]
        k3s.setdefault("events", []).append({"t": time.time(), "event": "new cluster", "node": node})
    if "password" not in k3s:
        return "starting kubernetes: preparing server: failed to get CA certs: no cluster to join at " + str(config.get("server"))
    if token.startswith("K10"):
        ca_hash = token[3:].split("::", 1)[0]
        if ca_hash != k3s["ca_hash"]:
            return f"token CA hash does not match the Cluster CA certificate hash: {k3s['ca_hash']} != {ca_hash}"
    if _password(token) != k3s["password"]:
        return "failed to validate token: token is not valid"
    if role == "server":
        members = k3s.setdefault("members", {})
        try:
            with open(f"{ETCD_DIR}/name", encoding="utf-8") as handle:
                member = handle.read().strip()
        except FileNotFoundError:
            member = ""
        if member and member not in members:
            return f"etcd member {member} was removed from the cluster; remove {DATA}/server/db to join again"
        if not member:
            if any(other.rsplit("-", 1)[0] == node for other in members):
                return "etcd cluster join failed: duplicate node name found, please use a unique name for this node"
            member = f"{node}-{secrets.token_hex(4)}"
            _write(f"{ETCD_DIR}/name", member + "\n")
            members[member] = node
        _write(SERVER_TOKEN, f"K10{k3s['ca_hash']}::server:{k3s['password']}\n")
        # The auto-deploy directory k3s creates at start and watches (pkg/deploy); nothing applies it here.
        os.makedirs(f"{DATA}/server/manifests", exist_ok=True)
        _write(KUBECONFIG, yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "default", "cluster": {"certificate-authority-data": "VEVTVCBET1VCTEU=",
                                                         "server": "https://127.0.0.1:6443"}}],
            "users": [{"name": "default", "user": {"client-certificate-data": "VEVTVA==", "client-key-data": "VEVTVA=="}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default"}))
    return ""


def _node_password(state, node):
    """The node's password against the Secret the servers keep; returns an error or ''."""
    if not os.path.exists(NODE_PASSWORD):
        _write(NODE_PASSWORD, secrets.token_hex(16) + "\n")
    with open(NODE_PASSWORD, encoding="utf-8") as handle:
        digest = hashlib.sha256(handle.read().strip().encode()).hexdigest()
    name = f"{node}.node-password.k3s"
    found = [s for s in state["objects"].setdefault("secrets", [])
             if s["metadata"]["name"] == name and s["metadata"].get("namespace") == "kube-system"]
    if found and found[0]["data"]["hash"] != digest:
        return ("Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match "
                "server node-passwd entry, try enabling a unique node name with the --with-node-id flag")
    if not found:
        state["objects"]["secrets"].append({"apiVersion": "v1", "kind": "Secret", "immutable": True,
                                            "metadata": {"name": name, "namespace": "kube-system"},
                                            "data": {"hash": digest}})
    return ""


def _register(state, config, node, version, ready):
    """Create the Node (labels and taints) or write the configured labels over it again."""
    labels = dict(item.split("=", 1) for item in config.get("node-label") or [])
    nodes = state["objects"].setdefault("nodes", [])
    found = [n for n in nodes if n["metadata"]["name"] == node]
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    if not found:
        taints = []
        for taint in config.get("node-taint") or []:
            key_value, effect = taint.rsplit(":", 1)
            key, _unused, value = key_value.partition("=")
            taints.append({"key": key, "value": value, "effect": effect})
        nodes.append({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": node, "labels": labels, "annotations": {}},
                      "spec": {"taints": taints} if taints else {},
                      "status": {"conditions": [condition], "nodeInfo": {"kubeletVersion": version}}})
    else:
        found[0]["metadata"].setdefault("labels", {}).update(labels)
        found[0]["status"] = {"conditions": [condition], "nodeInfo": {"kubeletVersion": version}}
    _daemonsets(state)


def _daemonsets(state):
    """calico-node: one pod per Node, ready where the Node is Ready (the DaemonSet controller)."""
    nodes = state["objects"].get("nodes", [])
    ready = sum(1 for n in nodes
                if any(c.get("type") == "Ready" and c.get("status") == "True" for c in n["status"].get("conditions", [])))
    for ds in state["objects"].get("daemonsets", []):
        ds.setdefault("status", {}).update(desiredNumberScheduled=len(nodes), numberReady=ready)


def _notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def serve(role, version):
    with open(CONFIG, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    with open(config["token-file"], encoding="utf-8") as handle:
        token = handle.read().strip()
    node = config.get("node-name") or socket.gethostname()
    started = time.time()
    with cluster_state() as state:
        k3s = state.setdefault("k3s", {})
        fault = k3s.setdefault("faults", {}).get(node, {})
        if fault.get("fail_start", 0) > 0:
            fault["fail_start"] -= 1
            error = "planted fault: this start fails"
        else:
            error = _join(state, role, config, token, node) or _node_password(state, node)
        not_ready = float(fault.pop("not_ready_for", 0) or 0)
        if not error:
            _register(state, config, node, version, ready=not_ready == 0)
            _write(CONTAINERD_CONFIG, "# stand-in of the config.toml k3s writes at start (no CNI section: flannel off)\n"
                                      "version = 2\n")
        k3s.setdefault("starts", []).append({
            "node": node, "role": role, "version": version, "t": started, "ok": not error, "error": error,
            "config": _sha(CONFIG), "registries": _sha(REGISTRIES), "token": hashlib.sha256(token.encode()).hexdigest()})
    if error:
        _fail(error)
    if not_ready:
        def ready_later():
            time.sleep(not_ready)
            with cluster_state() as later:
                _register(later, config, node, version, ready=True)
        threading.Thread(target=ready_later, daemon=True).start()

    stopping = threading.Event()

    def stop(_signum, _frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _notify("READY=1")
    while not stopping.wait(3600):
        pass
    with cluster_state() as state:
        state.setdefault("k3s", {}).setdefault("stops", []).append({"node": node, "t": time.time()})
    return 0


def main(version, argv):
    command = argv[1] if len(argv) > 1 else ""
    if command in ("--version", "-v", "version"):
        sys.stdout.write(f"k3s version {version} (k3s test double)\ngo version go1.22 (test double)\n")
        return 0
    if command == "kubectl":
        return kubectl(argv[1:])
    if command in ("server", "agent"):
        return serve(command, version)
    if command in ("crictl", "ctr"):
        # Only the system containerd's pod removal calls these (reset); the scenarios use the embedded one.
        return 0
    sys.stderr.write(f"k3s test double: {command!r} is not modelled\n")
    return 1
