# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""The keys k3s takes in /etc/rancher/k3s/config.yaml: its command-line flags and their aliases.

Read from k3s-io/k3s at commit 870c16654d6119b948f95602fdd68eb70e0c5e1a ("Update stable channel to
v1.31.4+k3s1", the last commit before v1.32 on master; Kubernetes v1.31.4-k3s1 in go.mod), files
pkg/cli/cmds/server.go (ServerFlags), agent.go (NewAgentCommand), log.go, config.go and root.go,
hidden flags included. The v1.31 patch releases after it added server flags only (LATER_SERVER).

What k3s does with a key it does not know (pkg/configfilearg/defaultparser.go, parser.go
stripInvalidFlags): ``k3s server`` logs "Unknown flag ... found in config.yaml, skipping" and goes on
without it; ``k3s agent`` passes it to its flag parser, which stops with "flag provided but not
defined". Stage 0 refuses both, for the k3s release this list was read from (K3S_FLAGS_MINOR).
"""

from __future__ import annotations

# The k3s minor release the lists below were read from.
K3S_FLAGS_MINOR = (1, 31)

SERVER = frozenset((
    "advertise-address", "advertise-port", "agent-token", "agent-token-file", "airgap-extra-registry",
    "alsologtostderr", "apiserver-bind-address", "apiserver-port", "bind-address", "c", "cluster-cidr",
    "cluster-dns", "cluster-domain", "cluster-init", "cluster-reset", "cluster-reset-restore-path", "config",
    "container-runtime-endpoint", "d", "data-dir", "datastore-cafile", "datastore-certfile",
    "datastore-endpoint", "datastore-keyfile", "debug", "default-local-storage-path", "default-runtime",
    "disable", "disable-agent", "disable-apiserver", "disable-cloud-controller", "disable-controller-manager",
    "disable-default-registry-endpoint", "disable-etcd", "disable-helm-controller", "disable-kube-proxy",
    "disable-network-policy", "disable-scheduler", "docker", "egress-selector-mode", "embedded-registry",
    "enable-pprof", "etcd-arg", "etcd-disable-snapshots", "etcd-expose-metrics", "etcd-s3",
    "etcd-s3-access-key", "etcd-s3-bucket", "etcd-s3-config-secret", "etcd-s3-endpoint",
    "etcd-s3-endpoint-ca", "etcd-s3-folder", "etcd-s3-insecure", "etcd-s3-proxy", "etcd-s3-region",
    "etcd-s3-secret-key", "etcd-s3-skip-ssl-verify", "etcd-s3-timeout", "etcd-snapshot-compress",
    "etcd-snapshot-dir", "etcd-snapshot-name", "etcd-snapshot-retention", "etcd-snapshot-schedule-cron",
    "flannel-backend", "flannel-cni-conf", "flannel-conf", "flannel-external-ip", "flannel-iface",
    "flannel-ipv6-masq", "helm-job-image", "https-listen-port", "i", "image-credential-provider-bin-dir",
    "image-credential-provider-config", "image-service-endpoint", "kine-tls", "kube-apiserver-arg",
    "kube-cloud-controller-arg", "kube-cloud-controller-manager-arg", "kube-controller-arg",
    "kube-controller-manager-arg", "kube-proxy-arg", "kube-scheduler-arg", "kubelet-arg", "l",
    "lb-server-port", "log", "node-external-dns", "node-external-ip", "node-internal-dns", "node-ip",
    "node-label", "node-name", "node-taint", "nonroot-devices", "o", "pause-image", "prefer-bundled-bin",
    "private-registry", "protect-kernel-defaults", "resolv-conf", "rootless", "s", "secrets-encryption",
    "selinux", "server", "service-cidr", "service-node-port-range", "servicelb-namespace", "snapshotter",
    "supervisor-metrics", "supervisor-port", "system-default-registry", "t", "tls-san", "tls-san-security",
    "token", "token-file", "v", "vmodule", "vpn-auth", "vpn-auth-file", "with-node-id", "write-kubeconfig",
    "write-kubeconfig-group", "write-kubeconfig-mode",
))

AGENT = frozenset((
    "airgap-extra-registry", "alsologtostderr", "bind-address", "c", "config", "container-runtime-endpoint",
    "d", "data-dir", "debug", "default-runtime", "disable-apiserver-lb", "disable-default-registry-endpoint",
    "docker", "enable-pprof", "flannel-cni-conf", "flannel-conf", "flannel-iface", "i",
    "image-credential-provider-bin-dir", "image-credential-provider-config", "image-service-endpoint",
    "kube-proxy-arg", "kubelet-arg", "l", "lb-server-port", "log", "node-external-dns", "node-external-ip",
    "node-internal-dns", "node-ip", "node-label", "node-name", "node-taint", "nonroot-devices", "pause-image",
    "prefer-bundled-bin", "private-registry", "protect-kernel-defaults", "resolv-conf", "rootless", "s",
    "selinux", "server", "snapshotter", "t", "token", "token-file", "v", "vmodule", "vpn-auth",
    "vpn-auth-file", "with-node-id",
))

# Server flags later v1.31 patch releases added (or may have): accepted as known.
LATER_SERVER = frozenset((
    "etcd-s3-bucket-lookup-type", "etcd-s3-retention", "etcd-s3-session-token",
    "etcd-snapshot-reconcile-interval", "secrets-encryption-provider",
))


# The settings every server of a cluster must share, by their config.yaml keys: the ``cli`` tags of
# CriticalControlArgs (pkg/daemons/config/types.go, k3s-io/k3s master as of v1.34). A server that
# joins, or starts again with ``server:`` set, compares its own with the cluster's and stops with
# "critical configuration value mismatch between servers" (pkg/cluster/bootstrap.go compareConfig).
# Most are also fixed for the cluster's life: the pod and Service networks, the cluster DNS, the
# network-policy controller, the flannel backend. ``disable: [servicelb]`` sets disable-service-lb.
CRITICAL_SERVER = frozenset((
    "cluster-cidr", "cluster-dns", "cluster-domain", "disable-cloud-controller", "disable-helm-controller",
    "disable-network-policy", "disable-service-lb", "egress-selector-mode", "embedded-registry",
    "flannel-backend", "flannel-external-ip", "flannel-ipv6-masq", "secrets-encryption",
    "secrets-encryption-provider", "service-cidr", "supervisor-metrics",
))

# k3s's values when config.yaml does not name the key (pkg/cli/cmds/server.go ServerFlags Value;
# the networks from pkg/cli/server/server.go run). A bool flag defaults to false.
CRITICAL_DEFAULTS = {
    "cluster-cidr": "10.42.0.0/16", "service-cidr": "10.43.0.0/16", "cluster-domain": "cluster.local",
    "egress-selector-mode": "agent", "flannel-backend": "vxlan", "secrets-encryption-provider": "aescbc",
}

# A node's name is fixed once it registered: under a new name the kubelet registers a second Node,
# the old one stays NotReady, and a server's etcd member keeps the old name (pkg/etcd/etcd.go setName).
FIXED_NODE = frozenset(("node-name",))
# A node's container runtime: without the key k3s runs its own containerd, with it the kubelet uses
# that socket (pkg/agent/config/config.go). Moving a node to the other runtime leaves its pods, images
# and volumes behind in the first one; absent is a value here, not an older config.yaml.
FIXED_NODE_RUNTIME = "container-runtime-endpoint"


def _critical(config: dict, key: str):
    value = config.get(key)
    if key == "disable-service-lb" and value is None:
        value = "servicelb" in (config.get("disable") or [])
    if value is None:
        # cluster-dns defaults to an address k3s derives from service-cidr; the others are flags.
        value = CRITICAL_DEFAULTS.get(key, None if key == "cluster-dns" else False)
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return value


def fixed_setting_changes(before: dict, after: dict, server: bool) -> list[tuple[str, object, object]]:
    """(key, value on the node, value now) for each key k3s fixes that the new config.yaml changes.

    An empty ``before`` is a node without config.yaml: a first install, nothing is fixed yet.
    """
    if not before:
        return []
    keys = sorted(FIXED_NODE | (CRITICAL_SERVER if server else frozenset()))
    changes = []
    if before.get(FIXED_NODE_RUNTIME) != after.get(FIXED_NODE_RUNTIME):
        changes.append((FIXED_NODE_RUNTIME, before.get(FIXED_NODE_RUNTIME) or "k3s's own containerd",
                        after.get(FIXED_NODE_RUNTIME) or "k3s's own containerd"))
    for key in keys:
        old = before.get(key) if key in FIXED_NODE else _critical(before, key)
        new = after.get(key) if key in FIXED_NODE else _critical(after, key)
        if key in FIXED_NODE and old is None:
            continue  # written by an older release without the key: k3s used the host name then
        if str(old) != str(new):
            changes.append((key, old, new))
    return changes
