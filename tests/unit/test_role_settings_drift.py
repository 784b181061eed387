"""Drift test: each role's defaults/main.yml, meta/argument_specs.yml and README.md say the same.

For every role under roles/ (a role without meta/argument_specs.yml fails), the rules are:

defaults/main.yml and meta/argument_specs.yml
  * Every variable of defaults/main.yml is an option of the entry point ``main``.
  * Every option of ``main`` has a value in defaults/main.yml, unless it is ``required: true``
    (then it has no default anywhere) or, in a role other than ``common``, it is a collection-wide
    ``gitpod_k3s_*`` setting that common's defaults/main.yml defines: such an option is compared
    with common's value. (No role declares one today: collection-wide settings reach a role through
    its own prefixed defaults, e.g. ``k3s_cluster_cidr: "{{ gitpod_k3s_cluster_cidr }}"``.)
  * The spec's ``default:`` equals the value in defaults/main.yml, compared as parsed YAML values of
    the same types (``1`` is not ``true``, ``"5.7"`` is not ``5.7``; mapping order does not count).
    A template (a string holding ``{{`` or ``{%``) is a string compared as written, except that a run
    of whitespace counts as one space (a ``>-`` block folds or keeps its line breaks).
  * null: an absent spec ``default:`` means null (as Ansible reads it). A null in defaults/main.yml
    must have no spec default (or ``default: null``); a non-null value must have a spec default.
  * The one exception: a template default of an option whose type a string cannot satisfy (dict,
    list, bool, int, float) has no spec default -- a template is no value of that type, and a
    resolved copy would drift -- and the option's description says what it defaults to
    ("Defaults to ...").
  * A dict option with sub-``options`` is held to the same rules one level down: the keys of its
    default against its sub-options. There, ``required: true`` marks a key every mapping must hold (one
    given in the inventory replaces the default whole): the default holds it, the sub-option gives
    no default of its own.
  * Every other entry point's options equal ``main``'s (the roles share them through a YAML anchor).
    An entry point may take fewer options only if each of them equals ``main``'s and its
    description says it takes a ``subset`` of them. None does today.

README.md
  * The variables table is every Markdown table whose header has the columns ``variable`` and
    ``default`` (in any order, usually ``| variable | default | meaning |``); a role with options
    has at least one.
  * Each row names one variable as one code span, ``| `name` |``, and gives its default as one code
    span holding the YAML value, ``| `[traefik]` |``; any explanation belongs in the meaning column.
    ``\\|`` stands for ``|`` (needed inside a table). The default is read as YAML and compared with
    the value in defaults/main.yml by the rules above; a template may also be written unquoted,
    ``{{ gitpod_k3s_server_group }}``. A null default is written ``null``; a required option's
    default cell is the word ``required``.
  * Every option of ``main`` has exactly one row, and every row is an option of ``main``.

The test only checks; a message names the role, the file, the variable, what each side says and,
for a README row, the cell to write.
"""

import functools
import pathlib
import re

import pytest
import yaml

ROLES_DIR = pathlib.Path(__file__).resolve().parents[2] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if p.is_dir())
COMMON = "common"
COLLECTION_PREFIX = "gitpod_k3s_"
# Option types a template string is a value of (Ansible's default type is str).
TEMPLATE_TYPES = frozenset({"str", "path", "raw"})
NO_DEFAULT = object()
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=None)
def load_yaml(path):
    path = pathlib.Path(path)
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=Loader)  # a safe loader: CSafeLoader or SafeLoader


def role_defaults(role):
    return load_yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}


def role_specs(role):
    return (load_yaml(ROLES_DIR / role / "meta" / "argument_specs.yml") or {}).get("argument_specs") or {}


def main_options(role):
    return (role_specs(role).get("main") or {}).get("options") or {}


def is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def squeeze(text):
    return " ".join(text.split())


def same(left, right):
    """Equal YAML values of the same types; templates compared with whitespace runs squeezed."""
    if is_template(left) or is_template(right):
        return isinstance(left, str) and isinstance(right, str) and squeeze(left) == squeeze(right)
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return left == right


def show(value):
    """A value as one line of flow YAML (templates as written, squeezed)."""
    if value is NO_DEFAULT:
        return "(no default)"
    if is_template(value):
        return squeeze(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    return text


def readme_cell(value):
    """The README default cell for a value."""
    return "`" + show(value).replace("|", "\\|") + "`"


def describe(option):
    text = option.get("description") or ""
    return " ".join(text) if isinstance(text, list) else str(text)


def check_options(values, options, defaults_file, spec_file, fallback=None, prefix=""):
    """Problems between a mapping of values (defaults/main.yml, or a dict default) and spec options."""
    problems = []
    for name in values:
        if name not in options:
            problems.append(f"{defaults_file}: {prefix}{name}: no option of that name in {spec_file} (entry point main)")
    for name, option in options.items():
        option = option or {}
        where = f"{spec_file}: {prefix}{name}"
        spec_default = option.get("default", NO_DEFAULT)
        if prefix and option.get("required"):
            # One level down: a key every mapping must hold, the parent's default included.
            if name not in values:
                problems.append(f"{where}: a required key, but the default ({defaults_file}) lacks it")
            if spec_default is not NO_DEFAULT:
                problems.append(f"{where}: required, but the spec gives it a default ({show(spec_default)})")
            continue
        if name in values:
            value, source = values[name], defaults_file
        elif fallback is not None and name.startswith(COLLECTION_PREFIX) and name in fallback:
            value, source = fallback[name], f"roles/{COMMON}/defaults/main.yml"
        elif option.get("required"):
            if spec_default is not NO_DEFAULT:
                problems.append(f"{where}: required, but the spec gives it a default ({show(spec_default)})")
            continue
        else:
            problems.append(f"{where}: the option is not required and has no value in {defaults_file}")
            continue
        if option.get("required"):
            problems.append(f"{where}: required, but {source} gives it a value ({show(value)})")
            continue
        kind = option.get("type", "str")
        if value is None:
            if spec_default not in (NO_DEFAULT, None):
                problems.append(f"{where}: default {show(spec_default)}, but {source} has null (leave the spec default out)")
        elif is_template(value) and kind not in TEMPLATE_TYPES:
            if spec_default is not NO_DEFAULT:
                problems.append(
                    f"{where}: default {show(spec_default)}, but {source} has the template {show(value)}, which is no {kind}: "
                    "leave the spec default out and say 'Defaults to ...' in the description")
            elif "Defaults to" not in describe(option):
                problems.append(f"{where}: no spec default (the {kind} option defaults to a template), "
                                "so its description must say what it defaults to ('Defaults to ...')")
        elif spec_default is NO_DEFAULT:
            problems.append(f"{where}: no spec default, but {source} has {show(value)}")
        elif not same(value, spec_default):
            problems.append(f"{where}: default {show(spec_default)}, but {source} has {show(value)}")
        if option.get("options") and isinstance(value, dict):
            problems += check_options(value, option["options"], f"{source} ({prefix}{name})", spec_file,
                                      prefix=f"{prefix}{name}.")
    return problems


def check_entry_points(specs, spec_file):
    """Problems of entry points whose options are not main's (nor a documented subset of them)."""
    main = (specs.get("main") or {}).get("options") or {}
    problems = []
    for entry, spec in specs.items():
        if entry == "main":
            continue
        spec = spec or {}
        options = spec.get("options") or {}
        if same(options, main):
            continue
        different = sorted(name for name in options if name in main and not same(options[name], main[name]))
        extra = sorted(set(options) - set(main))
        missing = sorted(set(main) - set(options))
        documented = "subset" in f"{spec.get('short_description', '')} {describe(spec)}"
        if different or extra or not documented:
            problems.append(
                f"{spec_file}: entry point {entry}: options differ from main's "
                f"(not in main: {extra}; defined otherwise: {different}; missing: {missing}"
                f"{'' if documented else ', and its description does not say it takes a subset'})")
    return problems


def expected_values(role):
    """Option name -> the default a README row must show (NO_DEFAULT for a required option)."""
    values = role_defaults(role)
    common = role_defaults(COMMON)
    expected = {}
    for name, option in main_options(role).items():
        option = option or {}
        if name in values:
            expected[name] = values[name]
        elif name.startswith(COLLECTION_PREFIX) and name in common:
            expected[name] = common[name]
        elif option.get("required"):
            expected[name] = NO_DEFAULT
        else:
            expected[name] = option.get("default")
    return expected


# --- README tables -------------------------------------------------------------------------------

SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
CODE_SPAN = re.compile(r"^`([^`]+)`$")


def split_row(line):
    """The cells of a Markdown table row; ``\\|`` is a literal ``|``."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def variable_tables(text):
    """Rows of every table with a `variable` and a `default` column: (line number, variable cell, default cell)."""
    lines = text.splitlines()
    rows = []
    problems = []
    index = 0
    while index < len(lines) - 1:
        header = lines[index]
        if header.lstrip().startswith("|") and SEPARATOR.match(lines[index + 1]):
            names = [cell.lower() for cell in split_row(header)]
            index += 2
            if "variable" in names and "default" in names:
                var_col, def_col = names.index("variable"), names.index("default")
                while index < len(lines) and lines[index].lstrip().startswith("|"):
                    cells = split_row(lines[index])
                    if len(cells) != len(names):
                        problems.append((index + 1, f"{len(cells)} cells, the header has {len(names)}"))
                    else:
                        rows.append((index + 1, cells[var_col], cells[def_col]))
                    index += 1
            continue
        index += 1
    return rows, problems


def readme_value_matches(cell, value):
    if value is NO_DEFAULT:
        return cell == "required"
    match = CODE_SPAN.match(cell)
    if not match:
        return False
    content = match.group(1)
    if is_template(value) and squeeze(content) == squeeze(value):
        return True
    try:
        parsed = yaml.load(content, Loader=Loader)
    except yaml.YAMLError:
        return False
    return same(parsed, value)


def check_readme(role):
    readme = ROLES_DIR / role / "README.md"
    where = f"roles/{role}/README.md"
    expected = expected_values(role)
    if not readme.exists():
        return [f"{where}: missing"] if expected else []
    rows, problems = variable_tables(readme.read_text(encoding="utf-8"))
    problems = [f"{where}:{line}: variables table row: {what}" for line, what in problems]
    if expected and not rows and not problems:
        return [f"{where}: no variables table (a table with `variable` and `default` columns)"]
    seen = {}
    for line, var_cell, default_cell in rows:
        match = CODE_SPAN.match(var_cell)
        if not match:
            problems.append(f"{where}:{line}: variable cell {var_cell!r} is not one `name` (one variable per row)")
            continue
        name = match.group(1)
        if name in seen:
            problems.append(f"{where}:{line}: {name}: a second row (the first is line {seen[name]})")
            continue
        seen[name] = line
        if name not in expected:
            problems.append(f"{where}:{line}: {name}: no such option in roles/{role}/meta/argument_specs.yml (entry point main)")
            continue
        value = expected[name]
        if not readme_value_matches(default_cell, value):
            want = "required" if value is NO_DEFAULT else readme_cell(value)
            problems.append(f"{where}:{line}: {name}: default cell {default_cell!r}, but the default is {show(value)}; "
                            f"write {want}")
    for name in expected:
        if name not in seen:
            problems.append(f"{where}: {name}: option of meta/argument_specs.yml missing from the variables table")
    return problems


# --- The tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_spec(role):
    spec_file = f"roles/{role}/meta/argument_specs.yml"
    specs = role_specs(role)
    assert "main" in specs, f"{spec_file}: missing, or no entry point main in it"
    fallback = None if role == COMMON else role_defaults(COMMON)
    problems = check_options(role_defaults(role), main_options(role), f"roles/{role}/defaults/main.yml", spec_file, fallback)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_entry_points_take_main_options(role):
    problems = check_entry_points(role_specs(role), f"roles/{role}/meta/argument_specs.yml")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_readme_variables_table_matches_argument_spec(role):
    problems = check_readme(role)
    assert not problems, "\n".join(problems)


# --- The rules themselves, on made-up input ------------------------------------------------------

def test_same_tells_types_apart_and_squeezes_templates_only():
    assert same({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not same(1, True)
    assert not same("5.7", 5.7)
    assert not same({"a": 1}, {"a": 1, "b": 2})
    assert same("{{ a\n   | b }}", "{{ a | b }}")
    assert not same("5000 65000", "5000  65000")


def test_table_parser_reads_columns_by_header_and_escaped_pipes():
    text = "\n".join([
        "| meaning | default | variable |",
        "|---|:---:|---|",
        "| x | `{{ a \\| b }}` | `role_a` |",
        "| y | `[1, 2]` | `role_b` |",
        "",
        "| id | passes when |",
        "|---|---|",
        "| `role_c` | `1` |",
    ])
    rows, problems = variable_tables(text)
    assert problems == []
    assert rows == [(3, "`role_a`", "`{{ a | b }}`"), (4, "`role_b`", "`[1, 2]`")]


@pytest.mark.parametrize("cell, value, matches", [
    ("`{{ a | b }}`", "{{ a | b }}", True),
    ('`"{{ a | b }}"`', "{{ a | b }}", True),
    ("`{{ a }}` (x)", "{{ a }}", False),
    ('`"5.7"`', "5.7", True),
    ("`5.7`", "5.7", False),
    ("`null`", None, True),
    ("unset", None, False),
    ("`{a: [x, y]}`", {"a": ["x", "y"]}, True),
    ("`a: [x, y]`", {"a": ["x", "y"]}, True),
    ("`[6443]`", ["6443"], False),
    ("required", NO_DEFAULT, True),
])
def test_readme_default_cell_is_one_code_span_of_the_yaml_value(cell, value, matches):
    assert readme_value_matches(cell, value) is matches


def test_check_options_reports_each_kind_of_drift():
    options = {
        "r_a": {"type": "int", "default": 2},
        "r_b": {"type": "dict", "default": {"x": 1}},
        "r_c": {"type": "dict", "description": "Defaults to the value of C(g)."},
        "r_d": {"type": "int"},
        "r_e": {"type": "str"},
        "r_f": {"type": "str", "required": True},
    }
    values = {"r_a": 1, "r_b": "{{ g }}", "r_c": "{{ g }}", "r_d": None, "r_new": True}
    problems = check_options(values, options, "d.yml", "s.yml")
    assert problems == [
        "d.yml: r_new: no option of that name in s.yml (entry point main)",
        "s.yml: r_a: default 2, but d.yml has 1",
        "s.yml: r_b: default {x: 1}, but d.yml has the template {{ g }}, which is no dict: "
        "leave the spec default out and say 'Defaults to ...' in the description",
        "s.yml: r_e: the option is not required and has no value in d.yml",
    ]


def test_required_sub_options_are_keys_the_default_holds():
    table = {"type": "dict", "default": {"a": "x", "b": "y"},
             "options": {"a": {"type": "str", "required": True}, "b": {"type": "str", "required": True},
                         "c": {"type": "str", "required": True, "default": "z"}}}
    assert check_options({"t": {"a": "x", "b": "y"}}, {"t": table}, "d.yml", "s.yml") == [
        "s.yml: t.c: a required key, but the default (d.yml (t)) lacks it",
        "s.yml: t.c: required, but the spec gives it a default (z)",
    ]
    # Without c, the table is right: a and b are in the default and give no default of their own.
    table["options"].pop("c")
    assert check_options({"t": {"a": "x", "b": "y"}}, {"t": table}, "d.yml", "s.yml") == []


def test_entry_points_equal_main_or_a_documented_subset():
    main = {"r_a": {"type": "int", "default": 1}, "r_b": {"type": "str", "default": ""}}
    specs = {
        "main": {"options": main},
        "same": {"options": dict(main)},
        "part": {"description": ["Takes a subset of main's options."], "options": {"r_a": {"type": "int", "default": 1}}},
    }
    assert check_entry_points(specs, "s.yml") == []
    specs = {
        "main": {"options": main},
        "quiet": {"description": "No word on it.", "options": {"r_a": {"type": "int", "default": 1}}},
        "other": {"description": "A subset.", "options": {"r_a": {"type": "int", "default": 2}, "r_c": {}}},
    }
    assert check_entry_points(specs, "s.yml") == [
        "s.yml: entry point quiet: options differ from main's (not in main: []; defined otherwise: []; missing: ['r_b'], "
        "and its description does not say it takes a subset)",
        "s.yml: entry point other: options differ from main's (not in main: ['r_c']; defined otherwise: ['r_a']; missing: ['r_b'])",
    ]
