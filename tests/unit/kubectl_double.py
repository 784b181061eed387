#!/usr/bin/env python3
"""TEST DOUBLE for kubectl: answers the calls the collection's modules make from in-memory API objects.

Not a Kubernetes implementation. It parses the same command lines kubectl takes and prints what
kubectl prints for them (``-o json`` documents, ``node/NAME labeled``, the NotFound and unknown
resource type errors, exit codes), so the modules' parsing and decisions run for real:

- ``get RESOURCE [NAME] [-n NS | -A] [-l SELECTOR] -o json``
- ``version -o json``
- ``label node NAME k=v k- [--overwrite]``

In Python, ``KubectlDouble(objects)(argv) -> (rc, stdout, stderr)`` replaces
``AnsibleModule.run_command``. As a program, it keeps its state in the JSON file named by
``KUBECTL_DOUBLE_STATE`` (``{"objects": {resource: [obj, ...]}, "version": {...}}``) and appends
every call to ``calls`` in that file, so a playbook run can be checked afterwards.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys

# resource -> (aliases, namespaced, group for messages)
RESOURCES = {
    "nodes": (("node", "nodes", "no"), False, ""),
    "namespaces": (("namespace", "namespaces", "ns"), False, ""),
    "customresourcedefinitions": (("crd", "crds", "customresourcedefinition", "customresourcedefinitions",
                                   "customresourcedefinitions.apiextensions.k8s.io"), False, "apiextensions.k8s.io"),
    "storageclasses": (("storageclass", "storageclasses", "sc", "storageclasses.storage.k8s.io"), False, "storage.k8s.io"),
    "services": (("service", "services", "svc"), True, ""),
    "secrets": (("secret", "secrets"), True, ""),
    "pods": (("pod", "pods", "po"), True, ""),
    "deployments": (("deployment", "deployments", "deploy", "deployments.apps"), True, "apps"),
    "daemonsets": (("daemonset", "daemonsets", "ds", "daemonsets.apps"), True, "apps"),
    # Only known to the server when the CRD exists (see _resolve).
    "clusterissuers": (("clusterissuer", "clusterissuers", "clusterissuers.cert-manager.io"), False, "cert-manager.io"),
}
CRD_BACKED = {"clusterissuers": "clusterissuers.cert-manager.io"}

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _list(items):
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def _matches(labels, selector):
    for term in [t.strip() for t in selector.split(",") if t.strip()]:
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "==" in term or "=" in term:
            k, v = re.split(r"==?", term, maxsplit=1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubectlDouble:
    """A kubectl test double over a dict ``{resource plural: [API object, ...]}``."""

    def __init__(self, objects=None, version=None, unreachable=False):
        self.objects = copy.deepcopy(objects or {})
        self.version = copy.deepcopy(version)
        self.unreachable = unreachable
        self.calls = []

    # ------------------------------------------------------------------ plumbing
    def __call__(self, argv, *args, **kwargs):
        argv = list(argv)
        self.calls.append(argv)
        try:
            return self._dispatch(argv)
        except _Fail as exc:
            return exc.rc, exc.stdout, exc.stderr

    def _dispatch(self, argv):
        # Drop the command itself: "/path/kubectl", "kubectl" or "k3s kubectl".
        words = argv[1:]
        if argv and os.path.basename(argv[0]) == "k3s" and words[:1] == ["kubectl"]:
            words = words[1:]
        opts, pos = {"namespace": None, "all": False, "selector": None, "output": None, "overwrite": False}, []
        i = 0
        while i < len(words):
            w = words[i]
            if w in ("-n", "--namespace", "-l", "--selector", "-o", "--output", "--kubeconfig"):
                if i + 1 >= len(words):
                    raise _Fail(1, "", f"error: flag needs an argument: {w}\n")
                val = words[i + 1]
                i += 2
                key = {"-n": "namespace", "--namespace": "namespace", "-l": "selector", "--selector": "selector",
                       "-o": "output", "--output": "output", "--kubeconfig": "kubeconfig"}[w]
                opts[key] = val
                continue
            if w.startswith("--request-timeout=") or w.startswith("--kubeconfig="):
                i += 1
                continue
            if w in ("-A", "--all-namespaces"):
                opts["all"] = True
            elif w == "--overwrite":
                opts["overwrite"] = True
            elif w.startswith("-"):
                raise _Fail(1, "", f"error: unknown flag: {w}\nSee 'kubectl --help' for usage.\n")
            else:
                pos.append(w)
            i += 1
        if not pos:
            raise _Fail(1, "", "error: You must specify the type of resource to get.\n")
        verb, rest = pos[0], pos[1:]
        if verb == "version":
            return self._version(opts)
        if self.unreachable:
            raise _Fail(1, "", "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n")
        if verb == "get":
            return self._get(rest, opts)
        if verb == "label":
            return self._label(rest, opts)
        raise _Fail(1, "", f"error: unknown command \"{verb}\" for \"kubectl\"\n")

    def _resolve(self, word):
        for plural, (aliases, namespaced, group) in RESOURCES.items():
            if word in aliases:
                crd = CRD_BACKED.get(plural)
                if crd and not any(c["metadata"]["name"] == crd for c in self.objects.get("customresourcedefinitions", [])):
                    break
                return plural, namespaced, group
        raise _Fail(1, "", f"error: the server doesn't have a resource type \"{word}\"\n")

    @staticmethod
    def _qualified(plural, group):
        return f"{plural}.{group}" if group else plural

    # ------------------------------------------------------------------ verbs
    def _version(self, opts):
        if opts["output"] != "json":
            raise _Fail(1, "", "test double: only `version -o json` is implemented\n")
        doc = {"clientVersion": (self.version or {}).get("clientVersion", {})}
        if "kustomizeVersion" in (self.version or {}):
            doc["kustomizeVersion"] = self.version["kustomizeVersion"]
        if self.unreachable:
            return (1, json.dumps(doc, indent=4) + "\n",
                    "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n")
        doc["serverVersion"] = (self.version or {}).get("serverVersion", {})
        return 0, json.dumps(doc, indent=4) + "\n", ""

    def _get(self, rest, opts):
        if not rest:
            raise _Fail(1, "", "error: You must specify the type of resource to get.\n")
        if opts["output"] != "json":
            raise _Fail(1, "", "test double: only -o json is implemented\n")
        plural, namespaced, group = self._resolve(rest[0])
        names = rest[1:]
        ns = opts["namespace"] or "default"
        items = self.objects.get(plural, [])
        if namespaced and not opts["all"]:
            items = [o for o in items if o["metadata"].get("namespace") == ns]
        if opts["selector"]:
            items = [o for o in items if _matches(o["metadata"].get("labels") or {}, opts["selector"])]
        if names:
            found, err = [], ""
            for name in names:
                hit = [o for o in items if o["metadata"]["name"] == name]
                if hit:
                    found.append(hit[0])
                else:
                    err += f"Error from server (NotFound): {self._qualified(plural, group)} \"{name}\" not found\n"
            if err:
                out = json.dumps(found[0] if len(found) == 1 and len(names) == 1 else _list(found), indent=4) + "\n" if found else ""
                raise _Fail(1, out, err)
            doc = found[0] if len(names) == 1 else _list(found)
            return 0, json.dumps(doc, indent=4) + "\n", ""
        err = ""
        if not items:
            err = "No resources found\n" if opts["all"] or not namespaced else f"No resources found in {ns} namespace.\n"
        return 0, json.dumps(_list(copy.deepcopy(items)), indent=4) + "\n", err

    def _label(self, rest, opts):
        if len(rest) < 2:
            raise _Fail(1, "", "error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n")
        plural, _namespaced, _group = self._resolve(rest[0])
        if plural != "nodes":
            raise _Fail(1, "", "test double: only `label node` is implemented\n")
        name, changes = rest[1], rest[2:]
        if not changes:
            raise _Fail(1, "", "error: at least one label update is required\n")
        hit = [o for o in self.objects.get("nodes", []) if o["metadata"]["name"] == name]
        if not hit:
            raise _Fail(1, "", f"Error from server (NotFound): nodes \"{name}\" not found\n")
        node = hit[0]
        labels = dict(node["metadata"].get("labels") or {})
        out = ""
        for change in changes:
            if change.endswith("-") and "=" not in change:
                key = change[:-1]
                if key in labels:
                    del labels[key]
                else:
                    out += f"label \"{key}\" not found.\n"
                continue
            if "=" not in change:
                raise _Fail(1, "", f"error: invalid label spec: {change}\n")
            key, value = change.split("=", 1)
            if not _LABEL_KEY.match(key):
                raise _Fail(1, "", f"error: invalid label spec: {change}\n")
            if key in labels and labels[key] != value and not opts["overwrite"]:
                raise _Fail(1, "", f"error: '{key}' already has a value ({labels[key]}), and --overwrite is false\n")
            labels[key] = value
        if labels == (node["metadata"].get("labels") or {}):
            return 0, out + f"node/{name} not labeled\n", ""
        node["metadata"]["labels"] = labels
        node["metadata"]["resourceVersion"] = str(int(node["metadata"].get("resourceVersion", "0")) + 1)
        return 0, out + f"node/{name} labeled\n", ""

    # ------------------------------------------------------------------ helpers for tests
    def node_labels(self, name):
        for node in self.objects.get("nodes", []):
            if node["metadata"]["name"] == name:
                return dict(node["metadata"].get("labels") or {})
        raise KeyError(name)

    def label_calls(self):
        return [c for c in self.calls if "label" in c]


def run_module(module_main, args, double):
    """Run a module's ``main()`` with ``args``, every kubectl call answered by ``double``.

    Only ``AnsibleModule.run_command`` is replaced; argument parsing, the module's logic and
    exit_json/fail_json run for real. Returns ``(exit code, result dict)``.
    """
    import contextlib
    import io
    from unittest import mock

    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    args = dict(args)
    args.setdefault("kubectl", DOUBLE_PATH)
    out = io.StringIO()
    code = None
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "run_command", new=lambda self, cmd, **kw: double(cmd)), \
            contextlib.redirect_stdout(out):
        try:
            module_main()
        except SystemExit as exc:
            code = exc.code
    return code, json.loads(out.getvalue())


DOUBLE_PATH = os.path.abspath(__file__)


class _Fail(Exception):
    def __init__(self, rc, stdout, stderr):
        super().__init__(stderr)
        self.rc, self.stdout, self.stderr = rc, stdout, stderr


def main(argv):
    """Program mode: state in $KUBECTL_DOUBLE_STATE, every call appended to its ``calls``."""
    path = os.environ.get("KUBECTL_DOUBLE_STATE")
    if not path:
        sys.stderr.write("kubectl test double: set KUBECTL_DOUBLE_STATE to a state file\n")
        return 2
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    double = KubectlDouble(state.get("objects"), state.get("version"), state.get("unreachable", False))
    rc, out, err = double(argv)
    state["objects"] = double.objects
    state.setdefault("calls", []).append(argv[1:])
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
