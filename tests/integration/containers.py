"""Systemd test containers for integration tests, benchmarks and fault injection.

Starts N containers of the test image with the same flags as molecule/_shared/create.yml (read
from that file, so the two cannot drift): every capability but CAP_SYS_RESOURCE,
seccomp=unconfined, the host cgroup namespace with /sys/fs/cgroup bind-mounted, tmpfs on /run,
/run/lock and /tmp, the namespaced Kubernetes sysctls, and /lib/systemd/systemd as the command.
Waits for systemd, writes an Ansible inventory that reaches them through the
``community.docker.docker`` connection, and removes everything afterwards.

    from containers import ContainerFleet, docker_available

    with ContainerFleet("gk3s-rt-", {"k3s_servers": 1, "k3s_agents": 2},
                        extra_groups={"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_agents"]}) as fleet:
        inventory = fleet.write_inventory(tmp_path / "hosts.yml")
        ...

Names are ``<prefix><n>`` (1-based, in group order). Containers left over from an interrupted
run with the same prefix are removed first. Uses the ``docker`` Python SDK only.
"""

from __future__ import annotations

import concurrent.futures
import os
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CREATE_YML = os.path.join(REPO, "molecule", "_shared", "create.yml")
DEFAULT_IMAGE = os.environ.get("GITPOD_K3S_TEST_IMAGE") or "gitpod-k3s-test:bookworm"
LABEL = "gitpod-k3s-test"

# The test containers have 2 vCPUs and run Debian 12: thresholds relaxed so that the host layer
# runs to the end on them (benchmarks and fault tests; the Molecule scenarios set the same).
RELAXED_PREFLIGHT = {
    "preflight_min_vcpus": 1,
    "preflight_min_memory_gib": 1,
    "preflight_profiles": {
        key: {"min_vcpus": 1, "warn_vcpus": 0, "min_memory_gib": 1, "warn_memory_gib": 0}
        for key in ("meta", "ide", "workspace")
    },
    "preflight_allowed_distributions": ["ubuntu", "debian"],
}


def _create_vars():
    """The capability list and sysctls molecule/_shared/create.yml gives its containers."""
    with open(CREATE_YML, encoding="utf-8") as handle:
        play = yaml.safe_load(handle)[0]
    variables = play["vars"]
    return list(variables["__test_capabilities"]), dict(variables["__test_sysctls"])


CAPABILITIES, SYSCTLS = _create_vars()


def _client():
    import docker  # imported lazily: collecting tests must work without the SDK

    return docker.from_env(timeout=120)


def docker_available(image=DEFAULT_IMAGE):
    """(True, "") when the engine answers and the image exists, else (False, why)."""
    try:
        client = _client()
        client.ping()
    except Exception as exc:  # noqa: BLE001  any SDK/engine error means "no docker"
        return False, f"no Docker engine ({exc}); run tests/ensure-docker.sh"
    try:
        client.images.get(image)
    except Exception:  # noqa: BLE001
        return False, f"test image {image} is missing; run tests/images/build.sh"
    return True, ""


class ContainerFleet:
    """Start, wait for, describe and remove a set of systemd containers."""

    def __init__(self, prefix, groups, extra_groups=None, image=DEFAULT_IMAGE, sysctls=None,
                 network=None, host_vars=None, cpus=None, memory=None, mounts=None):
        """``groups``: inventory group -> number of containers (or list of names) in it.

        ``extra_groups``: group -> list of groups (or names) whose hosts it also holds,
        e.g. {"gitpod_meta": ["k3s_servers"]}. ``host_vars``: name -> dict. ``mounts``: host
        directory -> path in every container (read-write), e.g. a state all containers share.
        """
        self.prefix = prefix
        self.image = image
        self.sysctls = dict(SYSCTLS, **(sysctls or {}))
        self.network_name = network or f"{prefix.rstrip('-')}-net"
        self.cpus = cpus
        self.memory = memory
        self.host_vars = host_vars or {}
        self.mounts = dict(mounts or {})
        self.groups = {}
        n = 0
        for group, members in groups.items():
            if isinstance(members, int):
                names = []
                for _unused in range(members):
                    n += 1
                    names.append(f"{prefix}{n}")
            else:
                names = list(members)
            self.groups[group] = names
        for group, sources in (extra_groups or {}).items():
            names = []
            for source in sources:
                names.extend(self.groups.get(source, [source]))
            self.groups[group] = list(dict.fromkeys(names))
        self.names = list(dict.fromkeys(n for g in groups for n in self.groups[g]))
        self.client = None
        self.network = None
        self.timings = {}

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
            self.wait_for_systemd()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _remove_leftovers(self):
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}.prefix={self.prefix}"}):
            container.remove(force=True)
        for net in self.client.networks.list(names=[self.network_name]):
            net.remove()

    def start(self):
        started = time.monotonic()
        self.client = _client()
        self._remove_leftovers()
        self.network = self.client.networks.create(self.network_name, labels={LABEL: "true"})
        extra = {}
        if self.cpus:
            extra["nano_cpus"] = int(self.cpus * 1e9)
        if self.memory:
            extra["mem_limit"] = self.memory

        def run(name):
            return self.client.containers.run(
                self.image,
                command="/lib/systemd/systemd",
                name=name,
                hostname=name,
                detach=True,
                cap_add=CAPABILITIES,
                security_opt=["seccomp=unconfined"],
                cgroupns="host",
                volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                         **{source: {"bind": target, "mode": "rw"} for source, target in self.mounts.items()}},
                tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
                sysctls=self.sysctls,
                environment={"container": "docker"},
                network=self.network_name,
                labels={LABEL: "true", f"{LABEL}.prefix": self.prefix},
                **extra,
            )

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(run, self.names))
        self.timings["start"] = time.monotonic() - started

    def wait_for_systemd(self, timeout=120):
        """Wait until systemd in every container reports running (or degraded, fine for a container)."""
        started = time.monotonic()
        self.client = self.client or _client()

        def wait(name):
            container = self.client.containers.get(name)
            deadline = time.monotonic() + timeout
            state = ""
            while time.monotonic() < deadline:
                rc, out = container.exec_run(["systemctl", "is-system-running", "--wait"])
                state = out.decode("utf-8", "replace").strip()
                if state in ("running", "degraded"):
                    return state
                time.sleep(0.5)
            raise TimeoutError(f"{name}: systemd did not finish booting in {timeout}s (last state {state!r})")

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(wait, self.names))
        self.timings["systemd"] = time.monotonic() - started

    def stop(self):
        """Remove the containers and the network; safe to call twice."""
        client = self.client or _client()
        for name in self.names:
            try:
                client.containers.get(name).remove(force=True)
            except Exception:  # noqa: BLE001  already gone
                pass
        try:
            for net in client.networks.list(names=[self.network_name]):
                net.remove()
        except Exception:  # noqa: BLE001
            pass

    # --- use ----------------------------------------------------------------------------------
    def exec(self, name, command):
        """Run ``command`` (a list) in container ``name``: (rc, output)."""
        rc, out = (self.client or _client()).containers.get(name).exec_run(command)
        return rc, out.decode("utf-8", "replace")

    def pause(self, name):
        """Stop a container so that it becomes unreachable (fault injection)."""
        (self.client or _client()).containers.get(name).stop(timeout=1)

    def resume(self, name, timeout=120):
        """Start a stopped container again and wait for its systemd."""
        (self.client or _client()).containers.get(name).start()
        names, self.names = self.names, [name]
        try:
            self.wait_for_systemd(timeout)
        finally:
            self.names = names

    def inventory(self, group_vars=None):
        """The inventory as a dict (YAML inventory format)."""
        hosts = {}
        for name in self.names:
            hv = {
                "ansible_connection": "community.docker.docker",
                "ansible_host": name,
                "ansible_python_interpreter": "/usr/bin/python3",
            }
            hv.update(self.host_vars.get(name, {}))
            hosts[name] = hv
        children = {group: {"hosts": {n: None for n in names}} for group, names in self.groups.items()}
        inventory = {"all": {"hosts": hosts, "children": children}}
        if group_vars:
            inventory["all"]["vars"] = dict(group_vars)
        return inventory

    def write_inventory(self, path, group_vars=None):
        """Write the inventory (YAML) to ``path``; returns the path as a string."""
        path = str(path)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(self.inventory(group_vars), handle, sort_keys=False)
        return path
