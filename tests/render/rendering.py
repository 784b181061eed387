"""Render helpers shared by the render tests (tests/unit) and the conformance suite (tests/conformance).

Two ways of rendering, both on the controller only (no host is touched):
- k3s and Calico: tests/render/render.yml runs the k3s and calico roles' validate and facts tasks and
  templates for every host of an inventory and writes <render_dir>/<host>.json (file name -> text).
- cert-manager, the components and the Gitpod config fragment: playbooks/components.yml itself,
  with every manifest and artifact directory pointed into a temporary directory and the waits off.

`render_inventory` does both in one ansible-playbook run (one process per inventory).

`order_problems` walks manifest files in the order k3s applies them (tests of issue 13, defect 15).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RENDER_PLAYBOOK = REPO / "tests" / "render" / "render.yml"
COMPONENTS_PLAYBOOK = REPO / "playbooks" / "components.yml"
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


# The user's own MySQL, S3 bucket and registry, as an inventory names them (no server is contacted:
# the checks are off here).
EXTERNAL = {
    "components_check_external": False,  # the checks run against real servers in tests/integration
    "components_mysql": "external",
    "components_mysql_external": {"host": "db.example.com", "port": 3307, "username": "gp", "password": "db-pw"},
    "components_storage": "external",
    "components_storage_external": {"endpoint": "https://s3.eu-central-1.amazonaws.com", "region": "eu-central-1",
                                    "bucket": "gp-bucket", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3-secret"},
    "components_registry": "external",
    "components_registry_external": {"url": "https://reg.example.com:5000", "username": "ru", "password": "reg-pw"},
}


def ansible_env(callback: str = "ansible.posix.json") -> dict:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK=callback,
                ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")


# --- inventories ---------------------------------------------------------------------------------

def host(name: str, ip: str, arch: str = "x86_64", nodename: str | None = None, **extra) -> dict:
    """An inventory host; render_facts become its gathered facts (tests/render/render.yml).

    nodename is the kernel host name (uname -n) and may be a full name with dots; facts' hostname is
    its first label, as Ansible's platform facts cut it.
    """
    nodename = nodename or name
    return {name: {"ansible_architecture": arch, "ansible_default_ipv4": {"address": ip},
                   "render_facts": {"nodename": nodename, "hostname": nodename.split(".")[0]}, **extra}}


def inventory(servers: dict, agents: dict, groups: dict | None = None, all_vars: dict | None = None) -> dict:
    children = {"k3s_servers": {"hosts": servers}, "k3s_agents": {"hosts": agents}}
    for group, members in (groups or {}).items():
        children[group] = {"hosts": {m: {} for m in members}}
    return {"all": {"vars": {"ansible_python_interpreter": sys.executable,
                             **(all_vars or {})},
                    "children": children}}


def example_overlay() -> dict:
    """Laid over inventories/example: stand-in facts for its five hosts, and no SSH."""
    return {"all": {"vars": {"ansible_connection": "local", "ansible_become": False,
                             "ansible_python_interpreter": sys.executable},
                    "hosts": {**host("server1", "10.0.0.11"), **host("server2", "10.0.0.12"),
                              **host("server3", "10.0.0.13"), **host("agent1", "10.0.0.21"),
                              **host("agent2", "10.0.0.22")}}}


def make_chart_archive(name: str = "tigera-operator", version: str = "v3.30.3") -> bytes:
    """A minimal chart archive (a stand-in: only Chart.yaml; for render tests only)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode()
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_airgap_dir(path: Path, arch: str = "amd64", corrupt: str | None = None, omit: str | None = None) -> dict:
    """Files named as in a k3s release plus Calico's chart; contents are stand-ins (render test only)."""
    path.mkdir(parents=True, exist_ok=True)
    files = {
        ("k3s" if arch == "amd64" else f"k3s-{arch}"): b"stand-in for the k3s binary\n",
        f"k3s-airgap-images-{arch}.tar.zst": b"stand-in images\n",
        "calico-images-amd64.tar": b"stand-in calico images\n",
        "tigera-operator-v3.30.3.tgz": make_chart_archive(),
    }
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    if corrupt:
        sums[corrupt] = "0" * 64
    for name, data in files.items():
        if name != omit:
            (path / name).write_bytes(data)
    release = [n for n in files if n.startswith("k3s")]
    extra = [n for n in files if not n.startswith("k3s")]
    (path / f"sha256sum-{arch}.txt").write_text("".join(f"{sums[n]}  {n}\n" for n in release))
    (path / "sha256sum-extra.txt").write_text("".join(f"{sums[n]}  {n}\n" for n in extra))
    return files


# --- k3s and Calico (tests/render/render.yml) ------------------------------------------------------

def run_render(tmp: Path, inv: dict, expect_ok: bool = True, base_inventory: Path | None = None,
               extra_vars: dict | None = None, components: bool = False) -> tuple[Path, subprocess.CompletedProcess]:
    """Render `inv` (laid over base_inventory when given) into tmp/out/<host>.json.

    With components=True the same run goes on with playbooks/components.yml on the first server,
    its manifests in tmp/manifests and its artifacts in tmp/artifacts (see components_vars).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    inv_file = tmp / "inventory.yml"
    inv_file.write_text(yaml.safe_dump(inv))
    inventories = (["-i", str(base_inventory)] if base_inventory else []) + ["-i", str(inv_file)]
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    variables = {"render_dir": str(out), **(components_vars(tmp) if components else {}), **(extra_vars or {})}
    playbooks = [str(RENDER_PLAYBOOK)] + ([str(COMPONENTS_PLAYBOOK)] if components else [])
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, *inventories, *playbooks, "-e", json.dumps(variables)],
        cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    if expect_ok:
        assert proc.returncode == 0, f"render failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    return out, proc


def failures(proc: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """Failure messages per host from the ansible.posix.json callback output."""
    data = json.loads(proc.stdout)
    found: dict[str, list[str]] = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            for hostname, result in task["hosts"].items():
                messages = []
                if result.get("failed"):
                    messages.append(str(result.get("msg", "")))
                for item in result.get("results", []) or []:
                    if isinstance(item, dict) and item.get("failed"):
                        messages.append(str(item.get("msg", "")))
                if messages:
                    found.setdefault(hostname, []).extend(messages)
    return found


def stage0_errors(proc: subprocess.CompletedProcess) -> list[str]:
    """The inventory_check action's messages (its `errors`), from the ansible.posix.json output."""
    data = json.loads(proc.stdout)
    found: list[str] = []
    for play in data["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                found += [str(e) for e in result.get("errors") or []]
    return found


def rendered_files(out: Path, hostname: str) -> dict[str, str]:
    """File name -> rendered text, as tests/render/render.yml wrote them for the host."""
    return json.loads((out / f"{hostname}.json").read_text())


def load(out: Path, hostname: str, name: str):
    text = rendered_files(out, hostname)[name]
    if name.endswith(".json"):
        return json.loads(text)
    if name.endswith((".yaml", ".yml")):
        return yaml.safe_load(text)
    return text


# --- cert-manager and the components (playbooks/components.yml) ----------------------------------

KUBECTL_DOUBLE = REPO / "tests" / "unit" / "kubectl_double.py"


def cluster_double(tmp: Path, objects: dict | None = None) -> str:
    """components_kubectl for a cluster that the kubectl TEST DOUBLE (tests/unit/kubectl_double.py) stands
    in for, its API objects in tmp/cluster.json (kept when it exists): empty, as a new cluster is."""
    state = tmp / "cluster.json"
    if objects is not None or not state.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"objects": objects or {}}))
    return f"env KUBECTL_DOUBLE_STATE={state} {sys.executable} {KUBECTL_DOUBLE}"


def components_vars(tmp: Path) -> dict:
    """Point every file the components playbook writes into tmp; no waits on a cluster; the cluster's
    Secrets (read when the manifests are missing) from the kubectl double."""
    return {
        "components_kubectl": cluster_double(tmp),
        "cert_manager_wait": False,
        "cert_manager_manifests_dir": str(tmp / "manifests"),
        "components_manifests_dir": str(tmp / "manifests"),
        "gitpod_k3s_artifacts_dir": str(tmp / "artifacts"),
        "components_registry_htpasswd_rounds": 4,
    }


def components_command(tmp: Path, extra: dict, check: bool = False, verbose: bool = False) -> list[str]:
    """playbooks/components.yml against localhost as the only k3s server."""
    tmp.mkdir(parents=True, exist_ok=True)
    inv = tmp / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": {"localhost": {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
    }}}}}}))
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inv), str(COMPONENTS_PLAYBOOK), "-e", json.dumps({**components_vars(tmp), **extra})]
    if check:
        cmd.append("--check")
    if verbose:
        cmd.append("-vvv")
    return cmd


def run_components_many(jobs) -> list[tuple[int, object]]:
    """Run the components playbook for each (tmp, extra, check[, verbose]) at once.

    Returns [(rc, json output)] in order; for verbose jobs the raw text instead of JSON. The runs are
    independent (own directories), so they go in parallel.
    """
    procs = [subprocess.Popen(components_command(*job), cwd=REPO,
                              env=ansible_env("ansible.builtin.default" if len(job) > 3 and job[3] else "ansible.posix.json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for job in jobs]
    results = []
    for job, proc in zip(jobs, procs):
        stdout, stderr = proc.communicate(timeout=600)
        if len(job) > 3 and job[3]:
            results.append((proc.returncode, stdout + stderr))
            continue
        try:
            out = json.loads(stdout)
        except ValueError as exc:
            raise AssertionError(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{stdout[-3000:]}") from exc
        results.append((proc.returncode, out))
    return results


def failure_messages(out: dict, hostname: str = "localhost") -> list[str]:
    msgs = []
    for play in out["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get(hostname, {})
            if res.get("failed"):
                msgs.append(res.get("msg", ""))
    return msgs


def load_manifests(directory: Path) -> dict[str, list[dict]]:
    """File name -> the objects in it, for every manifest in a directory."""
    docs = {}
    for name in sorted(os.listdir(directory)):
        with open(directory / name) as fh:
            docs[name] = [d for d in yaml.safe_load_all(fh) if d is not None]
    return docs


# --- what a re-render changes: objects, pod templates and what they read ----------------------

def by_identity(tmp: Path) -> dict:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for objs in load_manifests(tmp / "manifests").values() for o in objs}


def references(pod_template: dict) -> set:
    """(kind, name) of every Secret and ConfigMap a pod template reads: env, envFrom, volumes."""
    spec = pod_template["spec"]
    found = set()
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for env in container.get("env", []):
            source = env.get("valueFrom") or {}
            if "secretKeyRef" in source:
                found.add(("Secret", source["secretKeyRef"]["name"]))
            if "configMapKeyRef" in source:
                found.add(("ConfigMap", source["configMapKeyRef"]["name"]))
        for env in container.get("envFrom", []):
            if "secretRef" in env:
                found.add(("Secret", env["secretRef"]["name"]))
            if "configMapRef" in env:
                found.add(("ConfigMap", env["configMapRef"]["name"]))
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            found.add(("Secret", volume["secret"]["secretName"]))
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"]["name"]))
        for source in (volume.get("projected") or {}).get("sources", []):
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in source:
                    found.add((kind, source[key]["name"]))
    return found


def workloads(objs: dict) -> dict:
    """Pod templates by workload; a Job is known by its name without the hash it ends in."""
    found = {}
    for (kind, ns, name), obj in objs.items():
        if kind in ("StatefulSet", "Deployment", "DaemonSet", "Job"):
            found[(kind, ns, name.rsplit("-", 1)[0] if kind == "Job" else name)] = obj["spec"]["template"]
    return found


# --- k3s's file order ----------------------------------------------------------------------------

# Namespaces that exist before any manifest is applied.
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                  "Installation"}
# API groups built into k3s (core, apps, batch, ... and k3s's own helm-controller CRDs).
BUILTIN_GROUPS = {"", "apps", "batch", "helm.cattle.io"}
# API groups whose CRDs a chart installs, by chart name (spec.chart, or the HelmChart's name when the
# archive is embedded as chartContent), and whether its values must switch them on. cert-manager's
# chart makes its CRDs only with crds.enabled (or the older installCRDs); tigera-operator's ships
# them in its crds/ directory, which Helm always installs.
CHART_CRD_GROUPS = {
    "cert-manager": ({"cert-manager.io", "acme.cert-manager.io"},
                     lambda values: bool((values.get("crds") or {}).get("enabled") or values.get("installCRDs"))),
    "tigera-operator": ({"operator.tigera.io", "crd.projectcalico.org"}, lambda values: True),
}


def crd_groups(obj: dict) -> set[str]:
    """API groups whose CRDs this object installs (a HelmChart of a chart in CHART_CRD_GROUPS)."""
    if obj["kind"] != "HelmChart":
        return set()
    chart = obj["spec"].get("chart") or obj["metadata"]["name"]
    if chart not in CHART_CRD_GROUPS:
        return set()
    groups, enabled = CHART_CRD_GROUPS[chart]
    values = yaml.safe_load(obj["spec"].get("valuesContent") or "{}") or {}
    return set(groups) if enabled(values) else set()


def k3s_order(names) -> list[str]:
    """File names in the order k3s applies them: Go's sort.Strings, byte order."""
    return sorted(names, key=lambda n: n.encode())


def order_problems(docs: dict[str, list[dict]]) -> list[str]:
    """Walk the files (name -> objects) in k3s's order and report each object whose namespace or CRD
    is only made by the same or a later file, and each HelmChart whose target namespace a later file
    makes (its pods would start before that file's settings, e.g. Pod Security labels, are applied)."""
    namespaces, groups, problems = set(BUILTIN_NAMESPACES), set(BUILTIN_GROUPS), []
    addons = {}
    targets = []
    for name in k3s_order(docs):
        addon = name.split(".", 1)[0]
        assert addon not in addons, f"{name} and {addons[addon]} make the same k3s Addon {addon}"
        addons[addon] = name
        made_ns, made_groups = set(), set()
        for obj in docs[name]:
            group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
            if group not in groups:
                problems.append(f"{name}: {obj['kind']} {obj['metadata']['name']} needs the CRDs of {group}, made later")
            ns = obj["metadata"].get("namespace")
            if obj["kind"] not in CLUSTER_SCOPED and ns not in namespaces:
                problems.append(f"{name}: {obj['kind']} {obj['metadata']['name']} is in namespace {ns}, made later")
            if obj["kind"] == "Namespace":
                made_ns.add(obj["metadata"]["name"])
            made_groups |= crd_groups(obj)
        namespaces |= made_ns
        groups |= made_groups
        targets += [(name, obj["metadata"]["name"], obj["spec"]["targetNamespace"], set(namespaces))
                    for obj in docs[name] if obj["kind"] == "HelmChart" and obj["spec"].get("targetNamespace")]
    for name, chart, target, known in targets:
        if target not in known and target in namespaces:
            problems.append(f"{name}: HelmChart {chart} installs into namespace {target}, made by a later file")
    return problems
