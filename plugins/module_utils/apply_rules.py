# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""What a re-run's manifests would do to the objects already deployed, judged before any file is written.

k3s applies each file of its manifests directory whenever it changes and prunes the objects taken out
of it (k3s ``pkg/deploy/controller.go``: ``apply.WithOwner(&addon).WithGVK(addonGVKs...)``, "objects
don't get orphaned when they are removed from the file"). An object the API server refuses to update
fails on every pass, every 15 s, for good (the same file: ``time.After(15 * time.Second)``), while the
other objects of the file are still applied (rancher/wrangler v3 ``pkg/apply/desiredset_process.go``).
So three kinds of change are refused here, before a file is written:

- a field the API server never lets change (``immutable_changes``), read from kubernetes
  ``pkg/apis/apps/validation/validation.go`` (ValidateStatefulSetUpdate: "updates to statefulset spec
  for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy',
  'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"),
  ``pkg/apis/core/validation/validation.go`` (ValidatePersistentVolumeClaimUpdate: the spec is
  immutable after creation except resources.requests for bound claims; ValidateServiceUpdate:
  clusterIP; ValidateSecretUpdate / ValidateConfigMapUpdate: immutable objects) and apps/v1's
  immutable selectors. A Job's pod template and a Service's type are not in the list: wrangler deletes
  and re-creates such objects instead (its ``reconcilers.go`` returns ErrReplace);
- a claim taken out of a file: k3s deletes the PersistentVolumeClaim and, with local-path's
  reclaimPolicy Delete, the data on it; or a StatefulSet taken out (moved to another namespace), whose
  claims stay behind while its successor starts empty (``pruned_claims``); unless the user confirms it
  by the claim's name;
- a container image whose version goes down where the server program refuses it
  (``image_downgrades``): MySQL 5.7 does not start on a data directory MySQL 8.0 has upgraded.

Plain functions on API objects (dicts). tests/conformance/apirules.py is the tests' own reading of
the same API server rules, kept apart so the judge shares no code with what it judges.
"""

from __future__ import annotations

import re

STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds")


def identity(obj):
    meta = obj.get("metadata") or {}
    return (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def show(obj):
    kind, namespace, name = identity(obj)
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def _short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def immutable_changes(old, new):
    """[(field, old value, new value)] the API server refuses when ``new`` is applied over ``old``."""
    kind = new.get("kind")
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    fields = []
    if kind == "StatefulSet":
        fields = sorted((set(old_spec) | set(new_spec)) - set(STATEFULSET_MUTABLE))
    elif kind in ("Deployment", "DaemonSet", "ReplicaSet", "Job"):
        fields = ["selector"]
    elif kind == "PersistentVolumeClaim":
        fields = sorted((set(old_spec) | set(new_spec)) - {"resources", "volumeAttributesClassName"})
    elif kind == "Service":
        fields = [f for f in ("clusterIP", "clusterIPs") if f in old_spec]
    found = [(f"spec.{f}", old_spec.get(f), new_spec.get(f)) for f in fields if old_spec.get(f) != new_spec.get(f)]
    if kind == "PersistentVolumeClaim":
        old_size = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
        new_size = ((new_spec.get("resources") or {}).get("requests") or {}).get("storage")
        if old_size != new_size:
            # Growing needs a StorageClass with allowVolumeExpansion (k3s's local-path has none) and
            # shrinking is refused: neither is something a re-run may decide on its own.
            found.append(("spec.resources.requests.storage", old_size, new_size))
    if kind in ("Secret", "ConfigMap") and old.get("immutable"):
        found += [(f, old.get(f), new.get(f)) for f in ("data", "stringData", "binaryData", "immutable")
                  if old.get(f) != new.get(f)]
    return found


def pruned_claims(old_objects, new_objects):
    """[(claim name, namespace, what happens)] for the data a re-run would take away.

    A PersistentVolumeClaim taken out of a file is deleted by k3s (and local-path deletes its volume).
    A StatefulSet taken out (e.g. moved to another namespace) leaves its claims behind (the default
    persistentVolumeClaimRetentionPolicy is Retain), and the one that replaces it starts on new,
    empty claims: the data is no longer used. Both are named by the claims they concern.
    """
    kept = {identity(o) for o in new_objects}
    found = []
    for obj in old_objects:
        if identity(obj) in kept:
            continue
        kind, namespace, name = identity(obj)
        if kind == "PersistentVolumeClaim":
            found.append((name, namespace, "would be deleted with the data on it (k3s prunes what a manifest no longer "
                                           "holds, and local-path deletes the volume)"))
        elif kind == "StatefulSet":
            for template in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
                claim = f"{(template.get('metadata') or {}).get('name')}-{name}-0"
                found.append((claim, namespace, f"would be left behind by StatefulSet {namespace}/{name}, which k3s "
                                                "removes; the service would start again on a new, empty volume"))
    return found


_VERSION = re.compile(r":(\d+)\.(\d+)")


def _image_version(image):
    match = _VERSION.search(str(image or "").rsplit("/", 1)[-1])
    return (int(match.group(1)), int(match.group(2))) if match else None


def image_downgrades(old, new, containers):
    """[(container, old image, new image)] for the named containers whose MAJOR.MINOR tag goes down."""
    def images(obj):
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        return {c.get("name"): c.get("image") for c in spec.get("containers") or []}

    before, after = images(old), images(new)
    found = []
    for name in containers:
        old_v, new_v = _image_version(before.get(name)), _image_version(after.get(name))
        if old_v and new_v and new_v < old_v:
            found.append((name, before[name], after[name]))
    return found


def refusals(old_objects, new_objects, confirmed_claims=(), settings=None, downgrades=None):
    """Messages for every change of ``old_objects`` into ``new_objects`` that must not be applied.

    settings: "Kind/name" -> the settings that shape that object, named in its message.
    downgrades: "Kind/name" -> container names whose image version must not go down.
    """
    settings, downgrades = settings or {}, downgrades or {}
    old_by_id = {identity(o): o for o in old_objects}
    messages = []
    for new in new_objects:
        old = old_by_id.get(identity(new))
        if old is None:
            continue
        key = f"{new.get('kind')}/{identity(new)[2]}"
        hint = f" (set by {', '.join(settings[key])})" if key in settings else ""
        for field, before, after in immutable_changes(old, new):
            messages.append(
                f"{show(new)}{hint}: {field} would change from {_short(before)} to {_short(after)}, which the API "
                "server refuses once the object exists; k3s would retry the file every 15 s and no other change to "
                "this object would apply. Put the setting back to its installed value; to change it, migrate the data "
                "to a new volume yourself (see the day-two table in the README).")
        for container, before, after in image_downgrades(old, new, downgrades.get(key, ())):
            messages.append(
                f"{show(new)}{hint}: container {container} would go from {before} to {after}, an older release than "
                "the one whose data is on the volume; it cannot start on that data. Keep the installed version.")
    for name, namespace, what in pruned_claims(old_objects, new_objects):
        if name not in confirmed_claims:
            messages.append(
                f"PersistentVolumeClaim {namespace}/{name} {what}. If that is what you want, confirm it with "
                f"components_confirm_delete_claims: [{name}]; otherwise keep the setting that changed it.")
    return messages
