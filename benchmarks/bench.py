"""How close a fleet run comes to Ansible's own floor.

For each fleet size N (default 1, 5, 10; add 20 with --sizes 1,5,10,20) this starts N systemd
containers and times, in one run on the same containers:

  floor      benchmarks/floor.yml: minimal facts and a ping (Ansible's own minimum)
  preflight  playbooks/preflight.yml
  converge   playbooks/prepare.yml (preflight, host preparation, containerd) from scratch
  rerun      playbooks/prepare.yml again, changing nothing

It prints a table of wall times, task counts, changed counts and the ratios to the floor, writes
benchmarks/latest.json (rows: n, stage, wall_s, tasks, changed) and appends the table with the
machine, versions and date to benchmarks/RESULTS.md.

    make bench                      # sizes 1, 5, 10
    make bench BENCH_SIZES=1,5,10,20
"""

from __future__ import annotations

import argparse
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

from containers import RELAXED_PREFLIGHT, ContainerFleet, docker_available  # noqa: E402

STAGES = [
    ("floor", "benchmarks/floor.yml"),
    ("preflight", "playbooks/preflight.yml"),
    ("converge", "playbooks/prepare.yml"),
    ("rerun", "playbooks/prepare.yml"),
]


def fleet_groups(n):
    """One server (meta) and n-1 agents (workspace); a single node carries every label."""
    if n == 1:
        return {"k3s_servers": 1}, {"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_servers"]}
    return {"k3s_servers": 1, "k3s_agents": n - 1}, {"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_agents"]}


def run_stage(playbook, inventory, extra_vars_file, workdir):
    """Run one playbook; return (wall seconds, tasks run, changed results, failed results, rc)."""
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
        raise SystemExit(f"{playbook}: no JSON output (rc {proc.returncode})")
    tasks = sum(len(play["tasks"]) for play in out["plays"])
    changed = sum(s.get("changed", 0) for s in out["stats"].values())
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in out["stats"].values())
    return wall, tasks, changed, failed, proc.returncode


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


def table(rows):
    floors = {r["n"]: r["wall_s"] for r in rows if r["stage"] == "floor"}
    lines = ["| N | stage | wall s | tasks | changed | / floor |", "|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        ratio = r["wall_s"] / floors[r["n"]] if floors.get(r["n"]) else float("nan")
        lines.append(f"| {r['n']} | {r['stage']} | {r['wall_s']:.1f} | {r['tasks']} | {r['changed']} | {ratio:.2f} |")
    return "\n".join(lines)


def targets(rows):
    """The issue's targets, measured: b/a and d/a at the largest N <= 10, and c(10)/c(1)."""
    by = {(r["n"], r["stage"]): r["wall_s"] for r in rows}
    sizes = sorted({r["n"] for r in rows})
    n = max([s for s in sizes if s <= 10] or sizes)
    out = [
        f"preflight/floor at N={n}: {by[(n, 'preflight')] / by[(n, 'floor')]:.2f} (target <= 1.5)",
        f"rerun/floor at N={n}: {by[(n, 'rerun')] / by[(n, 'floor')]:.2f} (target <= 2.0)",
    ]
    if (1, "converge") in by and (n, "converge") in by and n > 1:
        out.append(f"converge N={n} / N=1: {by[(n, 'converge')] / by[(1, 'converge')]:.2f} (target < 3)")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,5,10", help="comma-separated fleet sizes (default 1,5,10)")
    parser.add_argument("--no-record", action="store_true", help="do not write latest.json / RESULTS.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    ok, why = docker_available()
    if not ok:
        raise SystemExit(f"bench: {why}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="gk3s-bench-") as tmp:
        extra = os.path.join(tmp, "relaxed.json")
        with open(extra, "w", encoding="utf-8") as handle:
            json.dump(RELAXED_PREFLIGHT, handle)
        for n in sizes:
            groups, extra_groups = fleet_groups(n)
            with ContainerFleet("gk3s-bench-", groups, extra_groups=extra_groups) as fleet:
                inventory = fleet.write_inventory(os.path.join(tmp, f"hosts-{n}.yml"))
                for stage, playbook in STAGES:
                    wall, tasks, changed, failed, rc = run_stage(playbook, inventory, extra, os.path.join(tmp, str(n)))
                    row = {"n": n, "stage": stage, "wall_s": round(wall, 2), "tasks": tasks, "changed": changed}
                    rows.append(row)
                    print(f"N={n:<3} {stage:<10} {wall:7.1f}s tasks={tasks:<4} changed={changed:<4}"
                          f"{'' if rc == 0 else f'  FAILED rc={rc} failed={failed}'}", flush=True)
                    if rc != 0:
                        raise SystemExit(f"bench: {playbook} failed at N={n}; the figures above are incomplete")

    print()
    print(table(rows))
    print()
    for line in targets(rows):
        print(line)

    if not args.no_record:
        with open(os.path.join(HERE, "latest.json"), "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
            handle.write("\n")
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        v = versions()
        with open(os.path.join(HERE, "RESULTS.md"), "a", encoding="utf-8") as handle:
            handle.write(f"\n## {stamp}\n\nMachine: {machine()}. {v['ansible']}; Docker {v['docker']}; Python {v['python']}.\n\n")
            handle.write(table(rows) + "\n\n" + "\n".join(f"- {t}" for t in targets(rows)) + "\n")


if __name__ == "__main__":
    main()
