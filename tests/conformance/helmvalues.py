"""Chart values as Helm computes them, checked against the chart's values.schema.json.

Helm coalesces the user's values (a HelmChart's valuesContent) over the chart's values.yaml: maps are
merged key by key, any other value given by the user replaces the chart's, and a user's null deletes
the chart's key. The result is validated against values.schema.json before anything is rendered;
`helm install` fails on a violation, and so does k3s's Helm job.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import yaml


def helm_merge(chart: dict, user: dict) -> dict:
    """user over chart, as Helm's coalesceValues does."""
    merged = copy.deepcopy(chart)
    for key, value in (user or {}).items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Chart:
    """A chart's values.yaml and values.schema.json from a directory."""

    def __init__(self, directory: Path):
        self.values = yaml.safe_load((Path(directory) / "values.yaml").read_text()) or {}
        schema = json.loads((Path(directory) / "values.schema.json").read_text())
        self.validator = jsonschema.validators.validator_for(schema)(schema)

    def validate(self, values_content: str) -> list[str]:
        user = yaml.safe_load(values_content or "") or {}
        if not isinstance(user, dict):
            return [f"valuesContent is a {type(user).__name__}, not a mapping"]
        merged = helm_merge(self.values, user)
        return [f"{'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
                for err in sorted(self.validator.iter_errors(merged), key=lambda e: list(map(str, e.absolute_path)))]
