"""Make this checkout importable as ansible_collections.selfhosted.gitpod_k3s for the tests."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, "collections")
# collections/ansible_collections/selfhosted/gitpod_k3s -> the checkout (not tracked: ansible-test
# allows no symlinked directory; `make venv` makes it too, for ansible.cfg's collections_path).
LINK = os.path.join(COLLECTIONS, "ansible_collections", "selfhosted", "gitpod_k3s")
if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    try:
        os.symlink(os.path.join("..", "..", ".."), LINK)
    except FileExistsError:
        pass
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
