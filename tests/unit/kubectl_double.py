#!/usr/bin/env python3
"""TEST DOUBLE for kubectl: answers the calls the collection's modules make from in-memory API objects.

Not a Kubernetes implementation. It parses the same command lines kubectl takes and prints what
kubectl prints for them (``-o json`` documents, ``node/NAME labeled``, the NotFound and unknown
resource type errors, exit codes), so the modules' parsing and decisions run for real:

- ``get RESOURCE [NAME] [-n NS | -A] [-l SELECTOR] -o json|name|jsonpath=...``, ``get --raw /readyz``
- ``version -o json``
- ``label node NAME k=v k- [--overwrite]`` and ``annotate node NAME k=v k- [--overwrite]``
- ``taint node NAME key[=value]:Effect key[:Effect]- [--overwrite]``
- ``delete RESOURCE NAME... [--ignore-not-found]`` (the API object only: what controllers do on a
  deletion is the caller's to model, see tests/integration/k3s_double.py)
- ``wait --for=condition=TYPE RES/NAME... | RES --all [--timeout=Ns]`` and
  ``rollout status deployment/NAME [--timeout=Ns]``: they poll the objects (re-reading the
  schedule below) until the condition holds or the timeout passes, as kubectl does; a named object
  that does not exist fails at once with NotFound, as kubectl does
- ``apply --dry-run=server -f -``: refused as by an admission webhook that is not answering until
  the flag ``webhook`` is set
- ``drain NODE [--ignore-daemonsets] [--delete-emptydir-data] [--force] [--timeout=Ns]`` and
  ``uncordon NODE``, with kubectl's refusals (pods that declare no controller, local storage,
  DaemonSet pods)

Time-scripted clusters: ``schedule`` is a list of ``{"at": seconds, "resource": plural, "object":
{...}}`` (the object appears, or replaces the one of the same namespace and name, ``at`` seconds
after the first call) and ``{"at": seconds, "flags": {"readyz": true, "webhook": true}}``. So a
Deployment can appear only after 20 s and become available 10 s later, the way k3s's deploy
controller, helm-controller's Job and a chart download make objects appear on a real cluster.

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
import time

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
    "tigerastatuses": (("tigerastatus", "tigerastatuses", "tigerastatuses.operator.tigera.io"), False, "operator.tigera.io"),
    "installations": (("installation", "installations", "installations.operator.tigera.io"), False, "operator.tigera.io"),
}
CRD_BACKED = {"clusterissuers": "clusterissuers.cert-manager.io",
              "tigerastatuses": "tigerastatuses.operator.tigera.io",
              "installations": "installations.operator.tigera.io"}
KINDS = {"nodes": "node", "namespaces": "namespace", "customresourcedefinitions": "customresourcedefinition",
         "storageclasses": "storageclass", "services": "service", "secrets": "secret", "pods": "pod",
         "deployments": "deployment", "daemonsets": "daemonset", "clusterissuers": "clusterissuer",
         "tigerastatuses": "tigerastatus", "installations": "installation"}
REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n"

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

    def __init__(self, objects=None, version=None, unreachable=False, schedule=None, t0=None, flags=None):
        self.objects = copy.deepcopy(objects or {})
        self.version = copy.deepcopy(version)
        self.unreachable = unreachable
        self.calls = []
        self.schedule = copy.deepcopy(schedule or [])
        self.t0 = t0
        self.flags = dict(flags or {"readyz": True, "webhook": True} if schedule is None else flags or {})

    # ------------------------------------------------------------------ time
    def _tick(self):
        """Apply every schedule entry whose time has come (idempotent: an upsert or a flag)."""
        if self.t0 is None:
            self.t0 = time.time()
        elapsed = time.time() - self.t0
        for entry in self.schedule:
            if entry["at"] > elapsed:
                continue
            if "flags" in entry:
                self.flags.update(entry["flags"])
            if "object" in entry:
                obj = copy.deepcopy(entry["object"])
                items = self.objects.setdefault(entry["resource"], [])
                key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
                items[:] = [o for o in items if (o["metadata"].get("namespace"), o["metadata"]["name"]) != key]
                items.append(obj)

    # ------------------------------------------------------------------ plumbing
    def __call__(self, argv, *args, **kwargs):
        argv = list(argv)
        self.calls.append(argv)
        self._tick()
        try:
            return self._dispatch(argv)
        except _Fail as exc:
            return exc.rc, exc.stdout, exc.stderr

    def _dispatch(self, argv):
        # Drop the command itself: "/path/kubectl", "kubectl" or "k3s kubectl".
        words = argv[1:]
        if argv and os.path.basename(argv[0]) == "k3s" and words[:1] == ["kubectl"]:
            words = words[1:]
        opts = {"namespace": None, "all": False, "selector": None, "output": None, "overwrite": False,
                "raw": None, "for": None, "timeout": None, "dry_run": None, "filename": None, "all_objects": False,
                "force": False, "ignore_daemonsets": False, "delete_emptydir_data": False, "ignore_not_found": False}
        pos = []
        i = 0
        valued = {"-n": "namespace", "--namespace": "namespace", "-l": "selector", "--selector": "selector",
                  "-o": "output", "--output": "output", "--kubeconfig": "kubeconfig", "--raw": "raw",
                  "-f": "filename", "--filename": "filename", "--for": "for", "--timeout": "timeout"}
        switches = {"--overwrite": "overwrite", "--all": "all_objects", "--force": "force",
                    "--ignore-daemonsets": "ignore_daemonsets", "--delete-emptydir-data": "delete_emptydir_data",
                    "--ignore-not-found": "ignore_not_found"}
        while i < len(words):
            w = words[i]
            if w in valued:
                if i + 1 >= len(words):
                    raise _Fail(1, "", f"error: flag needs an argument: {w}\n")
                opts[valued[w]] = words[i + 1]
                i += 2
                continue
            flag, eq, val = w.partition("=")
            if eq and flag in valued:
                opts[valued[flag]] = val
                i += 1
                continue
            if w.startswith("--request-timeout="):
                i += 1
                continue
            if w.startswith("--dry-run="):
                opts["dry_run"] = w.split("=", 1)[1]
            elif w in ("-A", "--all-namespaces"):
                opts["all"] = True
            elif w in switches:
                opts[switches[w]] = True
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
            raise _Fail(1, "", REFUSED)
        if verb == "get" and opts["raw"] is not None:
            return self._raw(opts["raw"])
        if verb == "get":
            return self._get(rest, opts)
        if verb == "label":
            return self._label(rest, opts)
        if verb == "annotate":
            return self._label(rest, opts, field="annotations")
        if verb == "taint":
            return self._taint(rest, opts)
        if verb == "wait":
            return self._wait(rest, opts)
        if verb == "rollout" and rest[:1] == ["status"]:
            return self._rollout_status(rest[1:], opts)
        if verb == "apply":
            return self._apply(opts)
        if verb == "drain":
            return self._drain(rest, opts)
        if verb == "uncordon":
            return self._uncordon(rest)
        if verb == "delete":
            return self._delete(rest, opts)
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
        output = opts["output"] or ""
        if output != "json" and output != "name" and not output.startswith("jsonpath="):
            raise _Fail(1, "", "test double: only -o json, -o name and -o jsonpath= are implemented\n")
        if "/" in rest[0]:
            rest = rest[0].split("/", 1) + rest[1:]
        plural, namespaced, group = self._resolve(rest[0])
        if output != "json":
            rc, out, err = self._get(rest, dict(opts, output="json"))
            doc = json.loads(out)
            items = doc["items"] if doc.get("kind") == "List" else [doc]
            if output == "name":
                qualified = KINDS[plural] + (f".{group}" if group else "")
                return rc, "".join(f"{qualified}/{o['metadata']['name']}\n" for o in items), err
            template = output[len("jsonpath="):]
            if len(items) != 1:
                raise _Fail(1, "", "test double: -o jsonpath= is implemented for one object\n")
            return rc, _jsonpath(template, items[0]), err
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
            if err and opts["ignore_not_found"]:
                # kubectl get --ignore-not-found: the missing names print nothing and are no error.
                if not found:
                    return 0, json.dumps(_list([]), indent=4) + "\n", ""
                err = ""
            if err:
                out = json.dumps(found[0] if len(found) == 1 and len(names) == 1 else _list(found), indent=4) + "\n" if found else ""
                raise _Fail(1, out, err)
            doc = found[0] if len(names) == 1 else _list(found)
            return 0, json.dumps(doc, indent=4) + "\n", ""
        err = ""
        if not items:
            err = "No resources found\n" if opts["all"] or not namespaced else f"No resources found in {ns} namespace.\n"
        return 0, json.dumps(_list(copy.deepcopy(items)), indent=4) + "\n", err

    def _label(self, rest, opts, field="labels"):
        if len(rest) < 2:
            raise _Fail(1, "", "error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n")
        plural, _namespaced, _group = self._resolve(rest[0])
        if plural != "nodes":
            raise _Fail(1, "", f"test double: only `{'label' if field == 'labels' else 'annotate'} node` is implemented\n")
        name, changes = rest[1], rest[2:]
        if not changes:
            raise _Fail(1, "", "error: at least one label update is required\n")
        hit = [o for o in self.objects.get("nodes", []) if o["metadata"]["name"] == name]
        if not hit:
            raise _Fail(1, "", f"Error from server (NotFound): nodes \"{name}\" not found\n")
        node = hit[0]
        labels = dict(node["metadata"].get(field) or {})
        out = ""
        for change in changes:
            if change.endswith("-") and "=" not in change:
                key = change[:-1]
                if key in labels:
                    del labels[key]
                elif field == "labels":
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
        # kubectl's annotate says "annotated" whether or not a value changed (annotate.go); label says "not labeled".
        if labels == (node["metadata"].get(field) or {}) and field == "labels":
            return 0, out + f"node/{name} not labeled\n", ""
        node["metadata"][field] = labels
        node["metadata"]["resourceVersion"] = str(int(node["metadata"].get("resourceVersion", "0")) + 1)
        return 0, out + f"node/{name} {'labeled' if field == 'labels' else 'annotated'}\n", ""

    def _raw(self, path):
        if path != "/readyz":
            raise _Fail(1, "", f"test double: only `get --raw /readyz` is implemented, not {path}\n")
        if not self.flags.get("readyz"):
            raise _Fail(1, "", REFUSED)
        return 0, "ok", ""

    def _find(self, plural, name, ns):
        for obj in self.objects.get(plural, []):
            if obj["metadata"]["name"] == name and obj["metadata"].get("namespace") in (ns, None):
                return obj
        return None

    def _targets(self, rest, opts):
        """[(plural, name or None)] from `res/name ...` or `res name ...` or `res --all`."""
        if not rest:
            raise _Fail(1, "", "error: resource(s) were provided, but no name was specified\n")
        if "/" in rest[0]:
            targets = []
            for word in rest:
                res, _unused, name = word.partition("/")
                targets.append((self._resolve(res), name))
            return targets
        resolved = self._resolve(rest[0])
        if opts["all_objects"]:
            return [(resolved, None)]
        return [(resolved, name) for name in rest[1:]]

    @staticmethod
    def _timeout(opts, default):
        value = opts["timeout"]
        if value is None:
            return default
        match = re.fullmatch(r"(\d+)(s|m)?", value)
        if not match:
            raise _Fail(1, "", f"error: invalid argument \"{value}\" for \"--timeout\" flag\n")
        return int(match.group(1)) * (60 if match.group(2) == "m" else 1)

    def _poll(self, timeout, check):
        """Call check() (after applying the schedule) until it returns a result or the timeout passes."""
        deadline = time.time() + timeout
        while True:
            self._tick()
            result = check()
            if result is not None or time.time() >= deadline:
                return result
            time.sleep(min(0.2, max(0.0, deadline - time.time())))

    def _wait(self, rest, opts):
        cond = opts["for"] or ""
        if not cond.startswith("condition="):
            raise _Fail(1, "", "test double: only wait --for=condition=TYPE[=VALUE] is implemented\n")
        ctype, _unused, cvalue = cond[len("condition="):].partition("=")
        cvalue = cvalue or "True"
        ns = opts["namespace"] or "default"
        targets = self._targets(rest, opts)
        objects = []
        for (plural, namespaced, group), name in targets:
            qualified = KINDS[plural] + (f".{group}" if group else "")
            if name is None:
                found = [o for o in self.objects.get(plural, []) if not namespaced or o["metadata"].get("namespace") == ns]
                if not found:
                    raise _Fail(1, "", "error: no matching resources found\n")
                objects += [(plural, qualified, o["metadata"]["name"]) for o in found]
                continue
            if self._find(plural, name, ns if namespaced else None) is None:
                raise _Fail(1, "", f"Error from server (NotFound): {self._qualified(plural, group)} \"{name}\" not found\n")
            objects.append((plural, qualified, name))
        out = ""
        deadline = time.time() + self._timeout(opts, 30)
        for plural, qualified, name in objects:
            def met(plural=plural, name=name):
                obj = self._find(plural, name, ns) or {}
                conds = (obj.get("status") or {}).get("conditions") or []
                return True if any(c.get("type") == ctype and c.get("status") == cvalue for c in conds) else None
            if not self._poll(max(0.0, deadline - time.time()), met):
                raise _Fail(1, out, f"error: timed out waiting for the condition on {KINDS[plural]}s/{name}\n")
            out += f"{qualified}/{name} condition met\n"
        return 0, out, ""

    def _rollout_status(self, rest, opts):
        ((plural, _namespaced, group), name), = self._targets(rest, opts)
        ns = opts["namespace"] or "default"
        if self._find(plural, name, ns) is None:
            raise _Fail(1, "", f"Error from server (NotFound): {self._qualified(plural, group)} \"{name}\" not found\n")

        def done():
            obj = self._find(plural, name, ns) or {}
            status, spec = obj.get("status") or {}, obj.get("spec") or {}
            if plural == "daemonsets":
                want = status.get("desiredNumberScheduled", 0)
                return True if want and status.get("numberAvailable", 0) >= want else None
            want = spec.get("replicas", 1)
            ok = status.get("updatedReplicas", 0) >= want and status.get("availableReplicas", 0) >= want
            return True if ok else None
        if not self._poll(self._timeout(opts, 600), done):
            raise _Fail(1, f"Waiting for deployment \"{name}\" rollout to finish: 0 of 1 updated replicas are available...\n",
                        "error: timed out waiting for the condition\n")
        return 0, f"{KINDS[plural]} \"{name}\" successfully rolled out\n", ""

    def _apply(self, opts):
        if opts["dry_run"] != "server" or opts["filename"] != "-":
            raise _Fail(1, "", "test double: only `apply --dry-run=server -f -` is implemented\n")
        if not self.flags.get("webhook"):
            raise _Fail(1, "", 'Error from server (InternalError): error when creating "STDIN": Internal error occurred: '
                               'failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
                               'Post "https://cert-manager-webhook.cert-manager.svc:443/validate?timeout=30s": '
                               'dial tcp 10.43.12.34:443: connect: connection refused\n')
        return 0, "created (server dry run)\n", ""

    def _node(self, rest):
        if not rest:
            raise _Fail(1, "", "error: USAGE: drain NODE [flags]\n")
        node = self._find("nodes", rest[0], None)
        if node is None:
            raise _Fail(1, "", f"Error from server (NotFound): nodes \"{rest[0]}\" not found\n")
        return node

    def _drain(self, rest, opts):
        node = self._node(rest)
        name = node["metadata"]["name"]
        cordoned = (node.get("spec") or {}).get("unschedulable", False)
        node.setdefault("spec", {})["unschedulable"] = True
        out = f"node/{name} already cordoned\n" if cordoned else f"node/{name} cordoned\n"
        pods = [p for p in self.objects.get("pods", []) if (p.get("spec") or {}).get("nodeName") == name]
        refusals = {"unmanaged": [], "local": [], "daemonset": []}
        warnings = {"unmanaged": [], "daemonset": []}
        evict = []
        for pod in pods:
            ref = f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"
            owners = pod["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "DaemonSet" for o in owners):
                (warnings if opts["ignore_daemonsets"] else refusals)["daemonset"].append(ref)
                continue
            if not owners:
                (warnings if opts["force"] else refusals)["unmanaged"].append(ref)
            if any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or []) and not opts["delete_emptydir_data"]:
                refusals["local"].append(ref)
            evict.append(pod)
        texts = {"unmanaged": "cannot delete Pods that declare no controller (use --force to override)",
                 "local": "cannot delete Pods with local storage (use --delete-emptydir-data to override)",
                 "daemonset": "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"}
        errors = [f"{texts[k]}: {', '.join(v)}" for k, v in refusals.items() if v]
        if errors:
            joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            raise _Fail(1, out, f"error: unable to drain node \"{name}\" due to error: {joined}, continuing command...\n"
                                f"There are pending nodes to be drained:\n {name}\n" + "".join(e + "\n" for e in errors))
        err = ""
        if warnings["daemonset"]:
            err += f"Warning: ignoring DaemonSet-managed Pods: {', '.join(warnings['daemonset'])}\n"
        if warnings["unmanaged"]:
            err += f"Warning: deleting Pods that declare no controller: {', '.join(warnings['unmanaged'])}\n"
        for pod in evict:
            out += f"evicting pod {pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}\n"
        for pod in evict:
            out += f"pod/{pod['metadata']['name']} evicted\n"
        self.objects["pods"] = [p for p in self.objects.get("pods", []) if p not in evict]
        return 0, out + f"node/{name} drained\n", err

    def _taint(self, rest, opts):
        """``taint node NAME key[=value]:Effect... key[:Effect]-... [--overwrite]``, as kubectl's taint.go:
        an added taint replaces one of the same key and effect only with --overwrite; removing one that
        is not there is an error; the verb printed is tainted, untainted or modified."""
        if len(rest) < 3:
            raise _Fail(1, "", "error: at least one taint update is required\n")
        plural, _namespaced, _group = self._resolve(rest[0])
        if plural != "nodes":
            raise _Fail(1, "", "test double: only `taint node` is implemented\n")
        node = self._node(rest[1:])
        taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
        adds, removes = [], []
        for spec in rest[2:]:
            if spec.endswith("-"):
                key, _colon, effect = spec[:-1].partition(":")
                removes.append((key, effect))
                continue
            match = re.match(r"^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$", spec)
            if not match:
                raise _Fail(1, "", f"error: invalid taint spec: {spec}\n")
            adds.append({"key": match.group(1), "value": match.group(2) or "", "effect": match.group(3)})
        for key, effect in removes:
            kept = [t for t in taints if not (t["key"] == key and (not effect or t["effect"] == effect))]
            if len(kept) == len(taints):
                raise _Fail(1, "", f"error: taint \"{key}{':' + effect if effect else ''}\" not found\n")
            taints = kept
        for taint in adds:
            same = [t for t in taints if t["key"] == taint["key"] and t["effect"] == taint["effect"]]
            if same and not opts["overwrite"]:
                raise _Fail(1, "", f"error: node {node['metadata']['name']} already has {taint['key']} taint(s) with same effect(s) "
                                   "and --overwrite is false\n")
            taints = [t for t in taints if t not in same] + [{k: v for k, v in taint.items() if v or k != "value"}]
        node.setdefault("spec", {})["taints"] = taints
        verb = "modified" if adds and removes else ("tainted" if adds else "untainted")
        return 0, f"node/{node['metadata']['name']} {verb}\n", ""

    def _delete(self, rest, opts):
        """``delete RESOURCE NAME... [--ignore-not-found]``: kubectl prints ``<kind> "<name>" deleted`` per object."""
        if "/" in (rest[0] if rest else ""):
            rest = rest[0].split("/", 1) + rest[1:]
        if len(rest) < 2:
            raise _Fail(1, "", "error: resource(s) were provided, but no name was specified\n")
        plural, namespaced, group = self._resolve(rest[0])
        ns = opts["namespace"] or "default"
        out, err = "", ""
        for name in rest[1:]:
            obj = self._find(plural, name, ns if namespaced else None)
            if obj is None:
                if not opts["ignore_not_found"]:
                    err += f"Error from server (NotFound): {self._qualified(plural, group)} \"{name}\" not found\n"
                continue
            self.objects[plural] = [o for o in self.objects[plural] if o is not obj]
            out += f"{KINDS[plural]} \"{name}\" deleted\n"
        return (1 if err else 0), out, err

    def _uncordon(self, rest):
        node = self._node(rest)
        name = node["metadata"]["name"]
        if not (node.get("spec") or {}).get("unschedulable"):
            return 0, f"node/{name} already uncordoned\n", ""
        node["spec"]["unschedulable"] = False
        return 0, f"node/{name} uncordoned\n", ""

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


def _jsonpath(template, obj):
    """The {.a.b} fields of a kubectl jsonpath template (no filters, no ranges); missing ones print ''."""
    def field(match):
        value = obj
        for key in match.group(1).split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    return re.sub(r"\{\.([^}]*)\}", field, template)


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
    double = KubectlDouble(state.get("objects"), state.get("version"), state.get("unreachable", False),
                           state.get("schedule"), state.get("t0"), state.get("flags"))
    if "-f" in argv and argv[argv.index("-f") + 1:argv.index("-f") + 2] == ["-"]:
        sys.stdin.read()
    started = time.time()
    rc, out, err = double(argv)
    state["t0"] = double.t0
    state["flags"] = double.flags
    state["objects"] = double.objects
    state.setdefault("calls", []).append(argv[1:])
    # Seconds since the first call, when this call started (t0 is set by the first call).
    state.setdefault("call_times", []).append(round(started - double.t0, 3))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
