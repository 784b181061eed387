# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Talk to a Kubernetes cluster through ``kubectl ... -o json``.

Used by the node_labels and cluster_requirements modules so that neither the controller nor the
hosts need a Kubernetes Python client: k3s ships ``k3s kubectl`` on every server. The class takes
any ``run(args) -> (rc, stdout, stderr)`` callable; :func:`from_module` builds one on top of
``AnsibleModule.run_command`` with ``LC_ALL=C`` so messages can be parsed.
"""

from __future__ import annotations

import json
import os
import shlex

DEFAULT_KUBECTL = "k3s kubectl"
DEFAULT_TIMEOUT = 30

# What kubectl prints on stderr when an object or a whole resource type does not exist, e.g.
#   Error from server (NotFound): namespaces "gitpod" not found
#   error: the server doesn't have a resource type "clusterissuers"
_NOT_FOUND_MARKERS = ("(NotFound)", "doesn't have a resource type")

KUBECTL_ARGUMENT_SPEC = dict(
    kubectl=dict(type="str", default=DEFAULT_KUBECTL),
    kubeconfig=dict(type="path"),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
)


class KubectlError(Exception):
    """A kubectl call failed; carries the command, rc and output for fail_json."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super().__init__(msg)
        self.msg = msg
        self.cmd = cmd or []
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def fail_kwargs(self):
        """Keyword arguments for ``module.fail_json``."""
        return dict(msg=self.msg, cmd=" ".join(shlex.quote(a) for a in self.cmd), rc=self.rc,
                    stdout=self.stdout, stderr=self.stderr)


def is_not_found(stderr):
    """True when kubectl's stderr says the object or its resource type does not exist."""
    return any(marker in (stderr or "") for marker in _NOT_FOUND_MARKERS)


def base_command(kubectl=DEFAULT_KUBECTL, kubeconfig=None, timeout=DEFAULT_TIMEOUT):
    """The argv prefix: the kubectl command (split like a shell would) and global flags."""
    if not kubectl or not str(kubectl).strip():
        raise KubectlError(f"kubectl must name a command (e.g. '{DEFAULT_KUBECTL}' or 'kubectl'), got {kubectl!r}")
    try:
        argv = shlex.split(str(kubectl))
    except ValueError as exc:
        raise KubectlError(f"kubectl {kubectl!r} is not a valid command line: {exc}") from exc
    if kubeconfig:
        argv += ["--kubeconfig", str(kubeconfig)]
    if timeout:
        if int(timeout) < 0:
            raise KubectlError(f"timeout must be 0 (no limit) or a number of seconds, got {timeout!r}")
        argv.append(f"--request-timeout={int(timeout)}s")
    return argv


class Kubectl:
    """A thin kubectl runner that returns parsed JSON."""

    def __init__(self, run, kubectl=DEFAULT_KUBECTL, kubeconfig=None, timeout=DEFAULT_TIMEOUT):
        self._run = run
        self.base = base_command(kubectl, kubeconfig, timeout)

    def run(self, args, sensitive=False):
        """Run kubectl with ``args``; raise KubectlError unless rc is 0. Returns stdout.

        ``sensitive`` keeps stdout out of the error (Secrets).
        """
        cmd = self.base + list(args)
        rc, out, err = self._run(cmd)
        if rc != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed (rc={rc}): {(err or out).strip()}",
                               cmd=cmd, rc=rc, stdout="" if sensitive else out, stderr=err)
        return out

    def json(self, args, missing_ok=False, sensitive=False):
        """Run ``kubectl ARGS -o json`` and parse it.

        With ``missing_ok``, an object or resource type that does not exist gives None.
        """
        cmd = self.base + list(args) + ["-o", "json"]
        rc, out, err = self._run(cmd)
        if rc != 0:
            if missing_ok and is_not_found(err):
                return None
            raise KubectlError(f"kubectl {' '.join(args)} -o json failed (rc={rc}): {(err or out).strip()}",
                               cmd=cmd, rc=rc, stdout="" if sensitive else out, stderr=err)
        try:
            return json.loads(out)
        except ValueError as exc:
            raise KubectlError(f"kubectl {' '.join(args)} -o json did not return JSON ({exc})",
                               cmd=cmd, rc=rc, stdout="" if sensitive else out[:2000], stderr=err) from exc

    def get(self, resource, name=None, namespace=None, all_namespaces=False, selector=None,
            missing_ok=False, sensitive=False):
        """``kubectl get RESOURCE [NAME] [-n NS | -A] [-l SELECTOR] -o json``."""
        args = ["get", resource]
        if name:
            args.append(name)
        if all_namespaces:
            args.append("--all-namespaces")
        elif namespace:
            args += ["--namespace", namespace]
        if selector:
            args += ["--selector", selector]
        return self.json(args, missing_ok=missing_ok, sensitive=sensitive)

    def items(self, resource, **kwargs):
        """The ``items`` of a list; an unknown resource type (CRD not installed) gives None."""
        kwargs.setdefault("missing_ok", True)
        got = self.get(resource, **kwargs)
        if got is None:
            return None
        return list(got.get("items") or [])


def from_module(module):
    """Build a Kubectl from a module's ``kubectl``, ``kubeconfig`` and ``timeout`` options.

    Fails the module with a clear message when the command cannot be found.
    """
    params = module.params
    try:
        argv = base_command(params["kubectl"], params.get("kubeconfig"), params.get("timeout", DEFAULT_TIMEOUT))
    except KubectlError as exc:
        module.fail_json(msg=exc.msg)
    exe = argv[0]
    if "/" in exe:
        found = exe if os.path.isfile(exe) and os.access(exe, os.X_OK) else None
    else:
        found = module.get_bin_path(exe)
    if not found:
        module.fail_json(msg=f"kubectl: command {exe!r} (from kubectl={params['kubectl']!r}) was not found or is not "
                             "executable on the host running the module; run it on a k3s server (default "
                             f"'{DEFAULT_KUBECTL}') or set kubectl to a kubectl binary and kubeconfig to its config")

    def run(cmd):
        return module.run_command(cmd, environ_update={"LC_ALL": "C", "LANG": "C"})

    return Kubectl(run, params["kubectl"], params.get("kubeconfig"), params.get("timeout", DEFAULT_TIMEOUT))
