"""The cert_manager role's waits, with KubectlDouble standing in for `k3s kubectl`.

No API server can run here, so the kubectl calls are the only thing faked: a script that records
each call (arguments, stdin, whether the issuers file exists yet) and refuses the first server-side
dry run the way kubectl does while cert-manager's webhook is not answering. The role's tasks,
retries and ordering run for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "render"))
from rendering import cluster_double  # noqa: E402  (tests/render is not a package)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DOUBLE = textwrap.dedent('''\
    import json, os, sys
    log, manifests = os.environ["KUBECTL_DOUBLE_LOG"], os.environ["KUBECTL_DOUBLE_MANIFESTS"]
    args = sys.argv[1:]
    stdin = sys.stdin.read() if "-" in args else ""
    calls = sum(1 for _ in open(log)) if os.path.exists(log) else 0
    dry_runs = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
    dry_runs = [c for c in dry_runs if "--dry-run=server" in c["args"]]
    with open(log, "a") as fh:
        fh.write(json.dumps({"args": args, "stdin": stdin,
                             "issuers_written": os.path.exists(os.path.join(manifests, "gitpod-k3s-20-cert-manager-issuers.yaml"))}) + "\\n")
    if "--dry-run=server" in args and not dry_runs:
        print('Error from server (InternalError): failed calling webhook "webhook.cert-manager.io"', file=sys.stderr)
        sys.exit(1)
    print("ok")
''')


def test_waits_run_in_order_and_issuers_follow_a_webhook_that_answers(tmp_path):
    double = tmp_path / "kubectl_double.py"
    double.write_text(DOUBLE)
    log = tmp_path / "calls.jsonl"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}}}))
    variables = {
        "cert_manager_wait": True,
        "cert_manager_wait_timeout": 60,
        "cert_manager_kubectl": f"{sys.executable} {double}",
        # The components role reads its Secrets from the cluster (none in a new one): the kubectl double.
        "components_kubectl": cluster_double(tmp_path),
        "cert_manager_manifests_dir": str(tmp_path / "manifests"),
        "components_manifests_dir": str(tmp_path / "manifests"),
        "gitpod_k3s_artifacts_dir": str(tmp_path / "artifacts"),
        "components_registry_htpasswd_rounds": 4,
    }
    env = dict(os.environ, KUBECTL_DOUBLE_LOG=str(log), KUBECTL_DOUBLE_MANIFESTS=str(tmp_path / "manifests"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
                           os.path.join(REPO, "playbooks", "components.yml"), "-e", json.dumps(variables)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    verbs = [" ".join(c["args"][:4]) for c in calls]
    assert verbs[0] == "-n cert-manager rollout status"
    assert calls[0]["args"][4] == "deployment/cert-manager-webhook"
    assert calls[1]["args"][0] == "wait" and "--for=condition=Established" in calls[1]["args"]
    assert "crd/certificates.cert-manager.io" in calls[1]["args"]
    dry = [c for c in calls if "--dry-run=server" in c["args"]]
    assert len(dry) == 2, "the refused dry run is retried"
    assert json.loads(dry[0]["stdin"])["kind"] == "ClusterIssuer"
    assert not any(c["issuers_written"] for c in dry), "issuers are written only after the webhook answered"
    ready = calls[-1]
    assert ready["args"][:2] == ["wait", "--for=condition=Ready"] and ready["args"][-1] == "clusterissuer/gitpod-k3s-ca"
    assert ready["issuers_written"]
