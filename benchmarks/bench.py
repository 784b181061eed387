"""How close a fleet run comes to the work it cannot avoid.

For each fleet size N (default 1, 5, 10, 20) this times, on N systemd containers of this machine:

  floor          benchmarks/floor.yml: minimal facts and a ping (Ansible's own minimum)
  package floor  the packages the converge installs, with plain apt-get, on N fresh containers
                 at once (one apt per container, as the converge runs them)
  preflight      playbooks/preflight.yml
  converge       playbooks/prepare.yml (preflight, host preparation, containerd) from scratch
  rerun          playbooks/prepare.yml again, changing nothing

floor, preflight, converge and rerun run one after the other on the same N containers; the package
floor runs first, on N other containers that nothing has changed. Its package list comes from the
roles at bench time: benchmarks/packages.yml computes the host_prep and containerd plans as
prepare.yml does (roles/host_prep/vars/main.yml __host_prep_packages, the time daemon and the
kernel headers of roles/host_prep/defaults/main.yml, containerd_package of
roles/containerd/defaults/main.yml), and each container then runs what host_state runs on a fresh
host: apt-get update, apt-cache show for the optional kernel headers, and one apt-get install with
host_state's own options. After the converge the bench checks that host_state installed the same
packages on every host and warns where it did not.

It prints one table row per N with the wall times, task and changed counts, and the ratios of the
same run, rerun / floor and converge / (floor + package floor), against their targets (TARGETS
below), each marked met or not met; the bench reports and does not fail on them. It writes
benchmarks/latest.json (rows: n, stage, wall_s, tasks, changed; the package floor's row adds
packages, the rerun and converge rows add ratio, ratio_to, target and met) and appends the table
with the machine, versions and date to benchmarks/RESULTS.md.

    make bench                      # sizes 1, 5, 10, 20
    make bench BENCH_SIZES=1,5
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
# The checkout as selfhosted.gitpod_k3s (`make venv` links it; ansible-playbook needs it too): the
# apt command lines and environment of host_state, so the package floor runs apt as the converge does.
if not os.path.lexists(os.path.join(REPO, "collections", "ansible_collections", "selfhosted", "gitpod_k3s")):
    raise SystemExit("bench: collections/ansible_collections/selfhosted/gitpod_k3s is missing; run `make venv`")
sys.path.insert(0, os.path.join(REPO, "collections"))

from containers import RELAXED_PREFLIGHT, ContainerFleet, docker_available  # noqa: E402

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.host_state import (  # noqa: E402
    APT_ENV, APT_INSTALL, APT_LOCK_WAIT)

DEFAULT_SIZES = "1,5,10,20"
PACKAGES_PLAYBOOK = "benchmarks/packages.yml"
PACKAGES_TASK = "Package specs of the host layer"
HOST_STATE_ACTION = "selfhosted.gitpod_k3s.host_state"

# The playbook stages, in the order they run on one fleet.
STAGES = [
    ("floor", "benchmarks/floor.yml"),
    ("preflight", "playbooks/preflight.yml"),
    ("converge", "playbooks/prepare.yml"),
    ("rerun", "playbooks/prepare.yml"),
]
# The order of the table's columns and of latest.json's rows.
STAGE_ORDER = ["floor", "package_floor", "preflight", "converge", "rerun"]
# stage: (the stages whose sum it is measured against, the target ratio, the sizes it applies to).
TARGETS = {
    "rerun": (("floor",), 1.5, (10, 20)),
    "converge": (("floor", "package_floor"), 1.3, None),
}


def fleet_groups(n):
    """One server (meta) and n-1 agents (workspace); a single node carries every label."""
    if n == 1:
        return {"k3s_servers": 1}, {"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_servers"]}
    return {"k3s_servers": 1, "k3s_agents": n - 1}, {"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_agents"]}


def run_playbook(playbook, inventory, extra_vars_file, workdir):
    """Run one playbook; return (wall seconds, the json callback's output, rc)."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_FORKS": "20",
    })
    cmd = ["ansible-playbook", "-i", inventory, "-e", f"@{extra_vars_file}",
           "-e", f"gitpod_k3s_artifacts_dir={workdir}/artifacts", "-e", f"preflight_report_dir={workdir}/preflight",
           os.path.join(REPO, playbook)]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    try:
        out = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{playbook}: no JSON output (rc {proc.returncode})") from None
    return wall, out, proc.returncode


def counts(out):
    """(tasks run, changed results, failed or unreachable results) of a json callback output."""
    tasks = sum(len(play["tasks"]) for play in out["plays"])
    changed = sum(s.get("changed", 0) for s in out["stats"].values())
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in out["stats"].values())
    return tasks, changed, failed


def host_results(out, action=None, task_name=None):
    """host -> result of the task run with ``action`` (or named ``task_name``) in a json callback output."""
    found = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if (action and result.get("action") == action) or (task_name and task["task"]["name"] == task_name):
                    found[host] = result
    return found


def package_specs(out):
    """host -> the host_state package specs ([{name, optional, unless_installed}]) benchmarks/packages.yml printed."""
    specs = {host: result.get("msg") for host, result in host_results(out, task_name=PACKAGES_TASK).items()}
    for host, spec in specs.items():
        if not isinstance(spec, list) or not all(isinstance(s, dict) and s.get("name") for s in spec):
            raise SystemExit(f"bench: {PACKAGES_PLAYBOOK} gave {host} no package list ({spec!r})")
    return specs


def apt_steps(specs, installed):
    """What host_state decides for a host whose installed packages are ``installed`` (names), before apt runs.

    Returns (required names to install, optional names to install when the archive has them).
    """
    required, optional = [], []
    for spec in specs:
        if any(alt in installed for alt in spec.get("unless_installed") or []):
            continue
        if spec["name"] in installed:
            continue
        (optional if spec.get("optional") else required).append(spec["name"])
    return required, optional


def _exec(client, name, argv):
    """Run ``argv`` in container ``name`` with apt's environment: (rc, output)."""
    rc, out = client.containers.get(name).exec_run(argv, environment=APT_ENV)
    return rc, out.decode("utf-8", "replace")


def install_packages(name, specs):
    """The package work of a converge on fresh container ``name``, with plain apt-get; returns the names installed."""
    import docker  # the SDK, as tests/integration/containers.py uses it; one client per thread

    client = docker.from_env(timeout=1800)
    try:
        names = sorted({s["name"] for s in specs} | {a for s in specs for a in s.get("unless_installed") or []})
        _rc, out = _exec(client, name, ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n", *names])
        installed = {fields[0] for fields in (line.split("\t") for line in out.splitlines())
                     if len(fields) == 2 and fields[1].startswith("ii")}
        required, optional = apt_steps(specs, installed)
        if not required and not optional:
            return []
        # A fresh host has no package lists: host_state refreshes them before it installs.
        argv = ["apt-get", "update", "-q", *APT_LOCK_WAIT]
        rc, out = _exec(client, name, argv)
        if rc != 0:
            raise RuntimeError(f"{name}: `{' '.join(argv)}` exited {rc}: {out.strip()[-2000:]}")
        for package in optional:
            rc, out = _exec(client, name, ["apt-cache", "show", "--no-all-versions", package])
            if rc == 0:
                required.append(package)
            elif rc != 100:
                raise RuntimeError(f"{name}: `apt-cache show {package}` exited {rc}: {out.strip()[-2000:]}")
        if required:
            argv = APT_INSTALL + required
            rc, out = _exec(client, name, argv)
            if rc != 0:
                raise RuntimeError(f"{name}: `{' '.join(argv)}` exited {rc}: {out.strip()[-2000:]}")
        return required
    finally:
        client.close()


def package_floor(specs_by_host):
    """Install every host's packages at once, one apt per container; (wall seconds, host -> names installed)."""
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(specs_by_host)) as pool:
        futures = {host: pool.submit(install_packages, host, specs) for host, specs in specs_by_host.items()}
        try:
            installed = {host: future.result() for host, future in futures.items()}
        except RuntimeError as exc:
            raise SystemExit(f"bench: package floor: {exc}") from None
    return time.monotonic() - started, installed


def compare_packages(floor_installed, converge_out):
    """Lines naming each host where host_state installed other packages than the package floor did."""
    results = host_results(converge_out, action=HOST_STATE_ACTION)
    floor_set = set(next(iter(floor_installed.values()), []))
    problems = []
    for host, names in sorted(floor_installed.items()):
        if set(names) != floor_set:
            problems.append(f"package floor host {host} installed {sorted(names)}, the others {sorted(floor_set)}")
    for host, result in sorted(results.items()):
        got = set((result.get("packages") or {}).get("installed") or [])
        if got != floor_set:
            problems.append(f"converge host {host}: host_state installed {sorted(got)}, the package floor {sorted(floor_set)}")
    if not results:
        problems.append(f"the converge output has no {HOST_STATE_ACTION} result to compare the package floor with")
    return problems


def ratios(rows):
    """Per N and target stage: (ratio, what it is measured against, target, applies, met) from the same run."""
    by = {(r["n"], r["stage"]): r["wall_s"] for r in rows}
    out = {}
    for n in sorted({r["n"] for r in rows}):
        for stage, (against, target, sizes) in TARGETS.items():
            if (n, stage) not in by or not all((n, a) in by for a in against):
                continue
            base = sum(by[(n, a)] for a in against)
            ratio = by[(n, stage)] / base if base else float("nan")
            applies = sizes is None or n in sizes
            out[(n, stage)] = {
                "ratio": round(ratio, 3),
                "ratio_to": " + ".join(against),
                "target": target if applies else None,
                "met": (ratio <= target) if applies else None,
            }
    return out


def verdict(entry):
    """The target cell: "<= 1.5: met", "<= 1.3: NOT met", or "-" where no target applies at this N."""
    if entry is None or entry["target"] is None:
        return "-"
    return f"<= {entry['target']}: {'met' if entry['met'] else 'NOT met'}"


def table(rows):
    """One row per N: wall times, task and changed counts, and the two ratios against their targets."""
    by = {(r["n"], r["stage"]): r for r in rows}
    marks = ratios(rows)
    played = ["floor", "preflight", "converge", "rerun"]
    lines = [
        "| N | floor s | package floor s | preflight s | converge s | rerun s | tasks f/p/c/r | changed f/p/c/r"
        " | rerun / floor | target | converge / (floor + package floor) | target |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for n in sorted({r["n"] for r in rows}):
        def cell(stage, key, n=n):
            value = by.get((n, stage), {}).get(key)
            if value is None:
                return "-"
            return f"{value:.1f}" if key == "wall_s" else str(value)

        cells = [str(n)] + [cell(s, "wall_s") for s in STAGE_ORDER]
        cells += ["/".join(cell(s, "tasks") for s in played), "/".join(cell(s, "changed") for s in played)]
        for stage in ("rerun", "converge"):
            mark = marks.get((n, stage))
            cells += [f"{mark['ratio']:.2f}" if mark else "-", verdict(mark)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows):
    """One line per target: its ratio at each N it applies to, met or not."""
    marks = ratios(rows)
    out = []
    for stage, (against, target, sizes) in TARGETS.items():
        where = f" at N = {' and '.join(str(s) for s in sizes)}" if sizes else ""
        base = " + ".join(a.replace("_", " ") for a in against)
        base = f"({base})" if len(against) > 1 else base
        measured = [f"N={n} {m['ratio']:.2f} {'met' if m['met'] else 'NOT met'}"
                    for (n, s), m in sorted(marks.items()) if s == stage and m["target"] is not None]
        out.append(f"{stage} <= {target} x {base}{where}: " + ("; ".join(measured) or "no such N in this run"))
    return out


def record(rows, problems):
    """latest.json: the rows, the rerun and converge rows with their ratio, target and met."""
    marks = ratios(rows)
    order = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    out = []
    for row in sorted(rows, key=lambda r: (r["n"], order[r["stage"]])):
        row = dict(row)
        row.update(marks.get((row["n"], row["stage"]), {}))
        if row["stage"] == "package_floor":
            row["matches_converge"] = not problems.get(row["n"])
        out.append(row)
    return out


def versions():
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"

    return {
        "ansible": first_line(["ansible", "--version"]),
        "docker": first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "python": platform.python_version(),
    }


def machine():
    cpus = os.cpu_count()
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024 // 1024
    return f"{platform.node()} {platform.system()} {platform.release()}, {cpus} vCPU, {mem} GiB"


def progress(n, stage, wall, tasks=None, changed=None, note=""):
    counted = "" if tasks is None else f" tasks={tasks:<4} changed={changed:<4}"
    print(f"N={n:<3} {stage:<14} {wall:7.1f}s{counted}{note}", flush=True)


def measure(n, tmp, extra):
    """The rows of one fleet size, and the package lists' disagreements (empty when none)."""
    groups, extra_groups = fleet_groups(n)
    rows = []
    # The package floor: N fresh containers, the roles' package list, plain apt-get on all at once.
    with ContainerFleet("gk3s-bench-pkg-", groups, extra_groups=extra_groups) as fleet:
        inventory = fleet.write_inventory(os.path.join(tmp, f"hosts-pkg-{n}.yml"))
        _wall, out, rc = run_playbook(PACKAGES_PLAYBOOK, inventory, extra, os.path.join(tmp, f"pkg-{n}"))
        if rc != 0:
            raise SystemExit(f"bench: {PACKAGES_PLAYBOOK} failed at N={n} (rc {rc})")
        specs = package_specs(out)
        if set(specs) != set(fleet.names):
            raise SystemExit(f"bench: {PACKAGES_PLAYBOOK} listed packages for {sorted(specs)}, not for every host of {fleet.names}")
        wall, floor_installed = package_floor(specs)
    names = sorted({p for installed in floor_installed.values() for p in installed})
    rows.append({"n": n, "stage": "package_floor", "wall_s": round(wall, 2), "tasks": None,
                 "changed": sum(1 for installed in floor_installed.values() if installed), "packages": names})
    progress(n, "package floor", wall, note=f"  apt-get install {' '.join(names)}")

    problems = []
    with ContainerFleet("gk3s-bench-", groups, extra_groups=extra_groups) as fleet:
        inventory = fleet.write_inventory(os.path.join(tmp, f"hosts-{n}.yml"))
        for stage, playbook in STAGES:
            wall, out, rc = run_playbook(playbook, inventory, extra, os.path.join(tmp, str(n)))
            tasks, changed, failed = counts(out)
            rows.append({"n": n, "stage": stage, "wall_s": round(wall, 2), "tasks": tasks, "changed": changed})
            progress(n, stage, wall, tasks, changed, "" if rc == 0 else f"  FAILED rc={rc} failed={failed}")
            if rc != 0:
                raise SystemExit(f"bench: {playbook} failed at N={n}; the figures above are incomplete")
            if stage == "converge":
                problems = compare_packages(floor_installed, out)
    for problem in problems:
        print(f"N={n:<3} WARNING: {problem}: the package floor is not the converge's package work", flush=True)
    return rows, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated fleet sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--no-record", action="store_true", help="do not write latest.json / RESULTS.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    ok, why = docker_available()
    if not ok:
        raise SystemExit(f"bench: {why}")

    rows, problems = [], {}
    with tempfile.TemporaryDirectory(prefix="gk3s-bench-") as tmp:
        extra = os.path.join(tmp, "relaxed.json")
        with open(extra, "w", encoding="utf-8") as handle:
            json.dump(RELAXED_PREFLIGHT, handle)
        for n in sizes:
            size_rows, problems[n] = measure(n, tmp, extra)
            rows.extend(size_rows)

    packages = sorted({p for r in rows if r["stage"] == "package_floor" for p in r["packages"]})
    notes = [f"package floor: apt-get update, then apt-get install {' '.join(packages)} on each of N fresh containers at once"]
    notes += [f"WARNING N={n}: {p}" for n, found in problems.items() for p in found]
    print()
    print(table(rows))
    print()
    for line in targets(rows) + notes:
        print(line)

    if not args.no_record:
        with open(os.path.join(HERE, "latest.json"), "w", encoding="utf-8") as handle:
            json.dump(record(rows, problems), handle, indent=1)
            handle.write("\n")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        v = versions()
        with open(os.path.join(HERE, "RESULTS.md"), "a", encoding="utf-8") as handle:
            handle.write(f"\n## {stamp}\n\nMachine: {machine()}. {v['ansible']}; Docker {v['docker']}; Python {v['python']}.\n\n")
            handle.write(table(rows) + "\n\n" + "\n".join(f"- {t}" for t in targets(rows) + notes) + "\n")


if __name__ == "__main__":
    main()
