# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Action plugin: every setting of the roles a playbook runs, checked on the controller only.

Documented in plugins/modules/inventory_check.py. For each play host it works out the value of
every variable a role's argument spec names, as the role would see it (the role's defaults under
the inventory and extra vars, templated), applies the argument spec with Ansible's own
validator, then the rules of plugins/module_utils/inventory_validation.py. It contacts no host.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import inventory_validation as iv

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(COLLECTION, "roles")
REDACTED = "********"


def _strip_defaults(options, top=True):
    """A spec without defaults, nor required at the top: only the values given are checked (the
    defaults are the role's defaults/main.yml, already among the values). A sub-option stays
    required: a mapping given in the inventory replaces the default whole, so one that lacks a key
    the role reads (a table of images or Secret names set in part) is refused."""
    out = {}
    for name, spec in (options or {}).items():
        spec = {k: v for k, v in spec.items() if k not in ("default", "description") and (k != "required" or not top)}
        if isinstance(spec.get("options"), dict):
            spec["options"] = _strip_defaults(spec["options"], top=False)
        out[name] = spec
    return out


def _secret_names(options):
    """Variables marked no_log: their templating errors are not quoted."""
    return {name for name, spec in (options or {}).items() if spec.get("no_log")}


_FILES = {}


def _secret_values(options, values):
    """The strings given for options (and sub-options) marked no_log, longest first."""
    found = []
    for name, spec in (options or {}).items():
        value = values.get(name) if isinstance(values, dict) else None
        if spec.get("no_log") and isinstance(value, str) and value:
            found.append(value)
        if isinstance(spec.get("options"), dict) and isinstance(value, dict):
            found += _secret_values(spec["options"], value)
    # Too short a string cannot be hidden in a message without garbling it; it is never quoted whole.
    return sorted({f for f in found if len(f) >= 4}, key=len, reverse=True)


def _named_in(name, message):
    return f"'{name}'" in message or f" {name} " in message or f" {name}." in message or message.startswith(f"{name} ")


def _apply_spec(validator, spec, checked):
    """(refused, validated): each refusal as (variable, message naming it), and the converted values.

    Ansible's messages for a sub-option sometimes name no variable, and a value of an odd type can
    make the validator itself fail: then each variable is validated alone, to say which it is.
    """
    try:
        outcome = validator.validate(checked, validate_role_argument_spec=True)
        messages = list(outcome.error_messages)
        if all(any(_named_in(n, m) for n in checked) for m in messages):
            return ([(next(n for n in checked if _named_in(n, m)), m) for m in messages],
                    {n: outcome.validated_parameters[n] for n in checked if n in outcome.validated_parameters
                     and not any(_named_in(n, m) for m in messages)})
    except Exception:  # pylint: disable=broad-exception-caught  # attributed below, one variable at a time
        pass
    refused, validated = [], {}
    for name, value in checked.items():
        try:
            key = ("option", id(spec), name)
            if key not in _FILES:
                _FILES[key] = ArgumentSpecValidator(_strip_defaults({name: spec[name]}))
            outcome = _FILES[key].validate({name: value}, validate_role_argument_spec=True)
            problems = list(outcome.error_messages)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the validator broke on the value's type
            problems = [f"the value cannot be read as a {spec[name].get('type', 'str')} ({type(exc).__name__})"]
        if problems:
            wanted = spec[name].get("type", "str")
            if spec[name].get("no_log"):
                shown = REDACTED
            elif isinstance(spec[name].get("options"), dict) and isinstance(value, dict):
                # Keys only: a misspelt key may hold a secret its spec would have hidden.
                shown = "{" + ", ".join(f"{k!r}: ..." for k in value) + "}"
            else:
                shown = repr(value)
            refused += [(name, m if _named_in(name, m) else f"{name} = {shown}: {m}; allowed: a {wanted} as the argument spec describes")
                        for m in problems]
        elif name in outcome.validated_parameters:
            validated[name] = outcome.validated_parameters[name]
    return refused, validated


def role_files(loader, role):
    """A role's argument spec (entry point main), defaults and vars, loaded as Ansible loads them.

    Kept per process (keyed by path and modification time): the files are read, never changed.
    """
    def load(*parts):
        path = os.path.join(ROLES, role, *parts)
        if not os.path.isfile(path):
            return {}
        key = (path, os.stat(path).st_mtime_ns)
        if key not in _FILES:
            _FILES[key] = loader.load_from_file(path, trusted_as_template=True) or {}
        return _FILES[key]
    spec = load("meta", "argument_specs.yml").get("argument_specs", {}).get("main", {}).get("options") or {}
    key = ("validator", role, id(spec))
    if key not in _FILES:
        _FILES[key] = ArgumentSpecValidator(_strip_defaults(spec))
    return {"defaults": load("defaults", "main.yml"), "vars": load("vars", "main.yml"), "spec": spec, "validator": _FILES[key]}


def check_settings(roles, hosts, raw_get, groups, loader, templar, scope="all"):
    """Every message about the settings of ``roles`` (common always included) for ``hosts``.

    ``raw_get(host)`` gives a host's untemplated variables (inventory, extra vars, magic
    variables, facts when gathered), as HostVars.raw_get does. Returns (messages, values).
    """
    roles = ["common"] + [r for r in roles if r != "common"]
    unknown = [r for r in roles if not os.path.isdir(os.path.join(ROLES, r))]
    if unknown:
        return [f"inventory_check: roles names {', '.join(unknown)}; allowed: roles of the collection "
                f"({', '.join(sorted(os.listdir(ROLES)))})"], {}
    files = {r: role_files(loader, r) for r in roles}
    secrets = set().union(*(_secret_names(f["spec"]) for f in files.values()))
    errors, values = [], {}  # errors: (host or None, message)
    for host in hosts:
        context = {}
        for role in roles:
            context.update(files[role]["defaults"])
        context.update(raw_get(host))
        for role in roles:
            for key, value in files[role]["vars"].items():
                context.setdefault(key, value)
        host_templar = templar.copy_with_new_env(available_variables=context)
        have_facts = "ansible_architecture" in context or bool(context.get("ansible_facts"))
        host_values = {"__facts": have_facts}
        for role in roles:
            spec = files[role]["spec"]
            names = list(spec) + list(iv.ALSO_READS.get(role, ()))
            if scope == "facts":
                names = [n for n in names if _read_by_fact_rules(n)]
            given = {}
            for name in names:
                if name in host_values or name not in context:
                    continue
                try:
                    given[name] = host_templar.template(context[name])
                except AnsibleUndefinedVariable as exc:
                    # A value that reads gathered facts, or the results of an earlier stage, is not known yet.
                    if not any(word in str(exc) for word in ("ansible_", "__", "hostvars")):
                        errors.append((host, f"{name} cannot be worked out: {REDACTED if name in secrets else exc.message}"))
                except AnsibleError as exc:
                    errors.append((host, f"{name} cannot be worked out: {REDACTED if name in secrets else exc.message}"))
            if scope != "facts":
                checked = {n: given[n] for n in spec if n in given}
                refused, validated = _apply_spec(files[role]["validator"], spec, checked)
                hidden = _secret_values(spec, checked)
                for name, message in refused:
                    for value in hidden:
                        message = message.replace(value, REDACTED)
                    errors.append((host, f"{message} (role {role})"))
                    # A value its spec refused is left out: the rules below see only well-typed values.
                    given.pop(name, None)
                for name, value in validated.items():
                    if name in given and spec[name].get("type") not in ("int", "float"):
                        # Lists from comma-separated strings and the like, as the role reads them; a number
                        # keeps the form given, so a message quotes it as written.
                        given[name] = value
            host_values.update(given)
            errors += [(host, m) for m in _guarded(iv.check_host, role, host, host_values if scope != "facts" else _only_facts(host_values))]
        values[host] = host_values
    if scope != "facts":
        errors += [(None, m) for m in _guarded(iv.check_fleet, roles, values, groups)]
    else:
        errors += [(None, m) for m in _guarded(iv.check_fleet_facts, roles, values)]
    return _attribute(errors, hosts), values


def _attribute(errors, hosts):
    """Each message once; one that only some hosts' values give names those hosts."""
    by_message = {}
    for host, message in errors:
        by_message.setdefault(message, set()).add(host)
    out = []
    for message, found in by_message.items():
        some = sorted(h for h in found if h is not None)
        if None in found or len(some) == len(hosts) or any(f"host {h}" in message for h in some):
            out.append(message)
        else:
            out.append(f"{message} ({'host' if len(some) == 1 else 'hosts'} {', '.join(some)})")
    return out


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _unused, args = self.validate_argument_spec(argument_spec={
            "roles": {"type": "list", "elements": "str", "default": []},
            "scope": {"type": "str", "choices": ["all", "facts"], "default": "all"},
            "hosts": {"type": "list", "elements": "str", "default": []},
        })
        hostvars = task_vars.get("hostvars")
        hosts = list(args.get("hosts") or task_vars.get("ansible_play_hosts_all") or [])
        groups = {k: list(v) for k, v in (task_vars.get("groups") or {}).items()}
        roles = list(args.get("roles") or [])
        errors, _unused = check_settings(roles, hosts, hostvars.raw_get, groups, self._loader, self._templar, args["scope"])
        result["changed"] = False
        result["errors"] = errors
        if errors:
            result["failed"] = True
            result["msg"] = "The inventory was rejected before any host was touched:\n" + "\n".join(f"- {e}" for e in errors)
        else:
            result["msg"] = f"settings of {', '.join(['common'] + roles)} accepted for {len(hosts)} host(s)"
        return result


def _guarded(rule, *args):
    """A rule's messages; a rule that breaks on a value is reported as such, naming the rule, never as a traceback."""
    try:
        return rule(*args)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # reported as a finding
        return [f"internal error: the rule {rule.__name__}{args[:1]!r} could not read the settings ({type(exc).__name__}: {exc}); "
                "please report it with the inventory"]


def _read_by_fact_rules(name):
    """A variable the facts rules read: the settings facts decide, the role constants, the node name set."""
    return name in iv.FACT_SETTINGS or name.startswith("__") or name == "k3s_node_name"


def _only_facts(values):
    """The values the facts rules read, when only those rules are to run again."""
    return {k: v for k, v in values.items() if _read_by_fact_rules(k)}
