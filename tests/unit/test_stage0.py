"""Stage 0 (the inventory_check action): a valid inventory passes; each class of mistake of issue 14
is refused by name, on the controller, with the variable or host, the value and what is allowed.

Every case below is a planted fault on a valid inventory: the test fails if the fault is accepted
or reported without the expected words. Runs the action's own code in-process
(tests/unit/stage0_harness.py); tests/unit/test_stage0_properties.py runs it through
ansible-playbook too.
"""

from __future__ import annotations

import copy

import pytest

from stage0_harness import check, example_inventory


def test_valid_inventories_pass():
    for servers, agents in ((1, 0), (1, 2), (3, 2)):
        errors, values = check(example_inventory(servers, agents))
        assert errors == [], (servers, agents, errors)
        assert len(values) == servers + agents
    # The collection's own example inventory, with its group_vars.
    errors, _unused = check_example()
    assert errors == []


def check_example():
    import os  # pylint: disable=import-outside-toplevel
    from stage0_harness import REPO, action  # pylint: disable=import-outside-toplevel
    from ansible.inventory.manager import InventoryManager  # pylint: disable=import-outside-toplevel
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel
    from ansible.template import Templar  # pylint: disable=import-outside-toplevel
    from ansible.vars.hostvars import HostVars  # pylint: disable=import-outside-toplevel
    from ansible.vars.manager import VariableManager  # pylint: disable=import-outside-toplevel
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[os.path.join(REPO, "inventories", "example")])
    variables = VariableManager(loader=loader, inventory=manager)
    hostvars = HostVars(inventory=manager, variable_manager=variables, loader=loader)
    groups = {n: [h.name for h in g.get_hosts()] for n, g in manager.groups.items()}
    from stage0_harness import SITE_ROLES  # pylint: disable=import-outside-toplevel
    return action.check_settings(SITE_ROLES, [h.name for h in manager.get_hosts()], hostvars.raw_get, groups, loader,
                                 Templar(loader=loader, variables={}))


# id, extra vars, words every one of which one message must hold
BAD_SETTINGS = [
    # every choice of every role, misspelt
    ("calico-encapsulation", {"calico_encapsulation": "vxlan"}, ["calico_encapsulation must be one of", "got: vxlan"]),
    ("containerd-mode", {"gitpod_k3s_containerd_mode": "docker"}, ["gitpod_k3s_containerd_mode must be one of: system, embedded"]),
    ("acme-provider", {"cert_manager_acme_provider": "letsencrypt"}, ["cert_manager_acme_provider must be one of", "letsencrypt"]),
    ("mysql-provider", {"components_mysql": "incluster"}, ["components_mysql must be one of", "incluster"]),
    ("registry-service-type", {"components_registry_service_type": "Nodeport"}, ["components_registry_service_type must be one of"]),
    ("preflight-check-id", {"preflight_warn_only": ["os", "sytemd"]}, ["preflight_warn_only must be one or more of", "sytemd"]),
    ("sysctl-policy", {"host_prep_sysctl_unapplied": "ignore"}, ["host_prep_sysctl_unapplied must be one of: warn, fail"]),
    ("label-missing-nodes", {"node_labels_missing_nodes": "skip"}, ["node_labels_missing_nodes must be one of: fail, warn"]),
    ("validation-secret-kind", {"cluster_validation_secrets": ["database", "tsl"]}, ["cluster_validation_secrets must be one or more of"]),
    # thresholds of the wrong type
    ("kernel-five", {"preflight_min_kernel": "five"}, ["preflight_min_kernel = 'five' is not a version", "MAJOR.MINOR[.PATCH]"]),
    ("vcpus-lots", {"preflight_min_vcpus": "lots"}, ["preflight_min_vcpus", "unable to convert to float"]),
    ("memory-negative", {"preflight_min_memory_gib": -4}, ["preflight_min_memory_gib = -4 is not a usable threshold", "a number >= 0"]),
    ("profile-threshold", {"preflight_profiles": {"meta": {"min_vcpus": "two"}}},
     ["preflight_profiles.meta.min_vcpus = 'two' is not a usable threshold"]),
    ("profile-workload", {"preflight_profiles": {"workspaces": {"min_vcpus": 2}}}, ["preflight_profiles.workspaces: unknown workload"]),
    ("mtu-word", {"calico_mtu": "jumbo"}, ["calico_mtu", "unable to convert to int"]),
    ("mtu-range", {"calico_mtu": 100}, ["calico_mtu = 100 is not usable", "576 to 9000"]),
    ("wait-zero", {"k3s_wait_timeout": 0}, ["k3s_wait_timeout = 0 is not usable", "> 0"]),
    ("validation-kernel", {"cluster_validation_min_kernel_version": "latest"}, ["cluster_validation_min_kernel_version = 'latest'"]),
    # values of the wrong shape
    ("cidr-list", {"k3s_cluster_cidr": ["10.42.0.0/16"]}, ["k3s_cluster_cidr", "is not a valid network"]),
    ("cidr-host-bits", {"k3s_service_cidr": "10.43.0.1/16"}, ["k3s_service_cidr = '10.43.0.1/16' is not a valid network"]),
    ("taint-shape", {"k3s_node_taints": ["dedicated=gitpod"]}, ["k3s_node_taints entry 'dedicated=gitpod' is not a taint"]),
    ("taints-not-list", {"k3s_node_taints": {"dedicated": "gitpod"}}, ["k3s_node_taints", "list"]),
    ("sysctl-not-scalar", {"host_prep_extra_sysctls": {"vm.max_map_count": [262144]}},
     ["host_prep_extra_sysctls.vm.max_map_count = [262144] is not a scalar"]),
    ("token-newline", {"k3s_token": "0123456789abcdefghijklmnop\n"}, ["k3s_token holds whitespace or a line break"]),
    ("token-space-long", {"k3s_token": "correct horse battery staple " * 4}, ["k3s_token holds whitespace"]),
    ("token-short", {"k3s_token": "short"}, ["k3s_token is 5 characters long; allowed: at least 16"]),
    ("cloudflare-token-newline", {"gitpod_k3s_domain": "gitpod.example.com", "cert_manager_acme_provider": "cloudflare",
                                  "cert_manager_acme_email": "ops@example.com", "cert_manager_cloudflare_api_token": "abc\ndef"},
     ["cert_manager_cloudflare_api_token holds whitespace or a line break"]),
    ("containerd-mode-disagrees", {"calico_containerd_mode": "embedded"},
     ["the containerd mode differs between roles", "calico_containerd_mode = 'embedded'", "k3s_containerd_mode = 'system'",
      "gitpod_k3s_containerd_mode"]),
    # Fixed-key tables: a partial mapping replaces the default whole (Ansible does not merge).
    ("images-partial", {"components_images": {"mysql_5_7": "mirror.example.com/mysql:5.7.44"}},
     ["components_images", "missing required arguments", "minio"]),
    ("images-unknown", {"cert_manager_images": {"controller": "c", "webhook": "w", "cainjector": "i", "acmesolver": "a",
                                                "startupapicheck": "s", "ctl": "x"}}, ["cert_manager_images", "ctl"]),
    ("secret-names-partial", {"gitpod_k3s_secret_names": {"database": "db"}}, ["gitpod_k3s_secret_names", "storage"]),
    ("url-no-scheme", {"k3s_release_url": "github.com/k3s-io/k3s/releases/download"}, ["k3s_release_url = 'github.com", "is not a URL"]),
    ("chart-repo-no-scheme", {"calico_chart_repo": "docs.tigera.io/calico/charts"}, ["calico_chart_repo = ", "is not a URL"]),
    ("acme-server-no-scheme", {"gitpod_k3s_domain": "gitpod.example.com", "cert_manager_acme_provider": "cloudflare",
                               "cert_manager_acme_email": "ops@example.com", "cert_manager_cloudflare_api_token": "tok",
                               "cert_manager_acme_server": "acme-v02.api.letsencrypt.org/directory"}, ["cert_manager_acme_server", "not a URL"]),
    ("mirror-map-list", {"gitpod_k3s_registry_mirrors": ["docker.io"]}, ["argument 'gitpod_k3s_registry_mirrors' is of type list", "dict"]),
    ("mirror-endpoint", {"gitpod_k3s_registry_mirrors": {"docker.io": {"endpoints": ["mirror.example.com"]}}},
     ["gitpod_k3s_registry_mirrors['docker.io']", "URL"]),
    ("mirror-key", {"gitpod_k3s_registry_mirrors": {"docker.io": {"mirrors": ["https://m.example.com"]}}}, ["unknown keys mirrors"]),
    ("namespace", {"gitpod_k3s_namespace": "Gitpod"}, ["gitpod_k3s_namespace = 'Gitpod' is not a valid Kubernetes name"]),
    ("domain", {"gitpod_k3s_domain": "https://gitpod.example.com"}, ["gitpod_k3s_domain = 'https://gitpod.example.com'"]),
    ("external-mysql-port", {"components_mysql": "external", "components_mysql_external": {
        "host": "db.example.com", "username": "gitpod", "password": "pw", "port": 70000}}, ["components_mysql_external.port = 70000"]),
    ("credential-override-key", {"components_credentials_overrides": {"mysql_pasword": "pw"}},
     ["components_credentials_overrides has the key 'mysql_pasword'", "did you mean 'mysql_password'"]),
    ("credential-override-root-quote", {"components_credentials_overrides": {"mysql_root_password": "it's"}},
     ["components_credentials_overrides.mysql_root_password holds a '", "pastes unescaped"]),
    ("confirm-claim-name", {"components_confirm_delete_claims": ["Registry_Data"]},
     ["components_confirm_delete_claims entry = 'Registry_Data' is not a valid Kubernetes name"]),
    ("external-s3-typo", {"components_storage": "external", "components_storage_external": {
        "endpoint": "s3.example.com", "bucket": "b", "access_key_id": "AKIAEXAMPLEKEY", "secret_acces_key": "s3cr3tvalue"}},
     ["components_storage_external", "secret_acces_key", "Supported parameters include"]),
    # combinations upstream refuses or that cannot work
    ("ipip-without-bgp", {"calico_encapsulation": "IPIP"}, ["calico_encapsulation = 'IPIP' needs calico_bgp = 'Enabled'"]),
    ("pool-not-cluster", {"calico_ipv4_pool_cidr": "10.50.0.0/16"}, ["calico_ipv4_pool_cidr = '10.50.0.0/16' is not k3s_cluster_cidr"]),
    ("ipv6-cluster", {"k3s_cluster_cidr": "fd00:42::/56"}, ["k3s_cluster_cidr = 'fd00:42::/56' is an IPv6 network"]),
    ("mixed-node-ip", {"k3s_node_ip": "fd00::10"}, ["k3s_node_ip = 'fd00::10' is IPv6 while k3s_cluster_cidr is IPv4"]),
    ("old-kubernetes", {"k3s_version": "v1.20.15+k3s1"}, ["k3s_version = 'v1.20.15+k3s1' is Kubernetes 1.20.15", "1.21.0 or newer"]),
    ("minimum-raised", {"gitpod_k3s_min_kubernetes": "1.32.0"}, ["k3s_version = 'v1.31.4+k3s1' is Kubernetes 1.31.4",
                                                                 "1.32.0 or newer"]),
    ("overlapping-cidrs", {"k3s_cluster_cidr": "10.0.0.0/8"}, ["k3s_cluster_cidr = 10.0.0.0/8 overlaps k3s_service_cidr"]),
    ("cidr-holds-node", {"k3s_cluster_cidr": "192.0.2.0/24"}, ["k3s_cluster_cidr = 192.0.2.0/24 contains the address 192.0.2.1"]),
    ("block-size", {"calico_block_size": 12}, ["calico_block_size = 12 does not fit calico_ipv4_pool_cidr = 10.42.0.0/16"]),
    ("registry-s3-without-storage", {"components_storage": "gitpod"}, ["components_registry = 'in_cluster' with components_registry_storage"]),
    ("reserved-key", {"k3s_server_config_extra": {"cluster-cidr": "10.0.0.0/16"}}, ["k3s_server_config_extra sets cluster-cidr"]),
    ("node-labels-taint", {"node_labels_taints": ["gitpod.io/headless=true"]},
     ["node_labels_taints entry 'gitpod.io/headless=true' is not a taint"]),
    ("unknown-agent-key", {"k3s_agent_config_extra": {"node-lable": ["a=b"]}},
     ["k3s_agent_config_extra sets 'node-lable', which is no flag of k3s agent", "refuses to start", "did you mean 'node-label'"]),
    ("server-key-on-agent", {"k3s_agent_config_extra": {"etcd-snapshot-retention": 5}},
     ["k3s_agent_config_extra sets 'etcd-snapshot-retention', which is no flag of k3s agent"]),
    ("unknown-server-key", {"k3s_server_config_extra": {"--etcd-snapshot-retention": 5}},
     ["k3s_server_config_extra sets '--etcd-snapshot-retention'", "skips it with a warning", "did you mean 'etcd-snapshot-retention'"]),
    ("check-host-unknown", {"components_check_delegate_to": "no-such-host"}, ["components_check_delegate_to = 'no-such-host' is no host"]),
    ("validation-secret-names", {"cluster_validation_secrets": ["database", "tls"], "cluster_validation_secret_names": {"database": "db"}},
     ["cluster_validation_secret_names", "missing required arguments", "tls"]),
    ("node-labels-empty", {"node_labels_labels": {}}, ["node_labels_labels is empty"]),
    ("gitpod-config-mode", {"gitpod_config_containerd_mode": "podman"}, ["gitpod_config_containerd_mode must be one of: system, embedded"]),
    ("acme-without-domain", {"cert_manager_acme_provider": "route53"}, ["cert_manager_acme_provider = 'route53' needs cert_manager_domain"]),
    # a setting that is gone, named with what took its place
    ("retired-node-ca-file", {"components_node_ca_file": "/srv/ca.crt"},
     ["components_node_ca_file = '/srv/ca.crt': the setting is gone", "gitpod_k3s_node_ca_file"]),
]


@pytest.mark.parametrize("case, extra, words", BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_bad_setting_is_refused_by_name(case, extra, words):
    errors, _unused = check(example_inventory(), extra)
    assert any(all(w in e for w in words) for e in errors), f"{case}: {words} not in {errors}"
    assert not any(e.startswith("internal error") for e in errors), errors


def _inventory(change):
    inv = example_inventory(1, 2)
    change(inv["all"]["children"])
    return inv


BAD_INVENTORIES = [
    ("empty-workspace-pool", lambda c: c["gitpod_workspace"].update(hosts={}),
     ["no host of k3s_servers or k3s_agents carries gitpod.io/workload_workspace_services", "gitpod_workspace"]),
    ("host-in-both-groups", lambda c: c["k3s_agents"]["hosts"].update(server1={}), ["host server1 is in both k3s_servers and k3s_agents"]),
    ("even-servers", lambda c: c["k3s_servers"]["hosts"].update(server2={"ansible_host": "192.0.2.2"}),
     ["inventory group k3s_servers has 2 hosts (server1, server2)", "odd number"]),
    ("bad-node-name", lambda c: c["k3s_agents"]["hosts"].update(Worker_3={"ansible_host": "192.0.2.103"}),
     ["host Worker_3: node name 'worker_3' (from its inventory host name, lower-cased)", "set k3s_node_name"]),
    ("same-address", lambda c: c["k3s_agents"]["hosts"]["agent2"].update(ansible_host="192.0.2.101"),
     ["hosts agent1, agent2 all point at 192.0.2.101"]),
    ("same-node-name", lambda c: [c["k3s_agents"]["hosts"][h].update(k3s_node_name="worker") for h in ("agent1", "agent2")],
     ["hosts agent1, agent2 have the same node name 'worker'"]),
    ("unknown-gitpod-group", lambda c: c.update(gitpod_workspaces={"hosts": {"agent1": None}}),
     ["inventory group 'gitpod_workspaces' is not a Gitpod group"]),
    ("initial-server-agent", lambda c: c["k3s_servers"]["hosts"]["server1"].update(k3s_initial_server="agent1"),
     ["k3s_initial_server = 'agent1' is not a server"]),
]


@pytest.mark.parametrize("case, change, words", BAD_INVENTORIES, ids=[c[0] for c in BAD_INVENTORIES])
def test_bad_inventory_is_refused_by_name(case, change, words):
    errors, _unused = check(_inventory(change))
    assert any(all(w in e for w in words) for e in errors), f"{case}: {words} not in {errors}"


def test_a_node_name_set_per_host_makes_an_odd_host_name_fine():
    inv = _inventory(lambda c: c["k3s_agents"]["hosts"].update(Worker_3={"ansible_host": "192.0.2.103", "k3s_node_name": "worker-3"}))
    assert check(inv)[0] == []


def test_same_address_on_other_ports_is_two_machines():
    inv = _inventory(lambda c: [c["k3s_agents"]["hosts"][h].update(ansible_host="192.0.2.200", ansible_port=p)
                                for h, p in (("agent1", 2201), ("agent2", 2202))])
    assert check(inv)[0] == []


def test_secrets_never_reach_a_message():
    secret = "s3cr3t-v4lue-that-must-not-show\n"
    errors, _unused = check(example_inventory(), {
        "k3s_token": secret, "components_mysql": "external",
        "components_mysql_external": {"host": "db.example.com", "username": "gitpod", "password": secret, "port": "x"}})
    assert errors and not any("s3cr3t" in e for e in errors), errors


def test_a_role_used_alone_gets_the_same_message():
    extra = {"calico_encapsulation": "IPIP"}
    alone, _unused = check(example_inventory(), extra, roles=["calico"])
    site, _unused = check(example_inventory(), extra)
    wanted = [e for e in site if e.startswith("calico_encapsulation = 'IPIP'")]
    assert wanted and set(wanted) <= set(alone)


def test_host_prep_alone_needs_no_cluster_groups():
    # No node is made: neither the groups nor the host name (no node name) matter to host_prep alone.
    inv = {"all": {"hosts": {"Lonely_1": {"ansible_host": "192.0.2.9"}}}}
    assert check(inv, roles=["host_prep", "containerd"])[0] == []
    errors = check(inv, roles=["k3s"])[0]
    assert any("inventory group k3s_servers has 0 hosts" in e for e in errors), errors
    assert any("host Lonely_1: node name 'lonely_1'" in e for e in errors), errors


def test_every_problem_is_listed_at_once():
    extra = {"calico_encapsulation": "vxlan", "preflight_min_kernel": "five", "k3s_token": "short"}
    errors, _unused = check(example_inventory(), extra)
    for name in extra:
        assert any(name in e for e in errors), (name, errors)


def test_the_check_does_not_change_the_inventory():
    inv = example_inventory()
    before = copy.deepcopy(inv)
    check(inv, {"calico_encapsulation": "IPIP"})
    assert inv == before


def test_preflight_check_ids_of_the_spec_are_the_modules():
    # The role's argument spec lists the check ids as choices; the host_requirements module defines them.
    # A spec cannot import Python, so this keeps the two lists one.
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_requirements  # pylint: disable=import-outside-toplevel
    from stage0_harness import REPO  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel
    with open(os.path.join(REPO, "roles", "preflight", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    for name in ("preflight_checks", "preflight_warn_only"):
        assert tuple(options[name]["choices"]) == host_requirements.CHECK_IDS, name
