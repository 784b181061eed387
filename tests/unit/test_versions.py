import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import versions


@pytest.mark.parametrize("release, expected", [
    ("5.4.0-1045-aws", (5, 4, 0)),
    ("5.15.0-91-generic", (5, 15, 0)),
    ("6.8.0-31-generic", (6, 8, 0)),
    ("4.15.0-213-generic", (4, 15, 0)),
    ("5.10.0-28-cloud-amd64", (5, 10, 0)),
    ("6.1.0+", (6, 1, 0)),
    ("6.18.44-fc-v595", (6, 18, 44)),
    ("6.8", (6, 8, 0)),
    ("  5.4.0-1045-aws\n", (5, 4, 0)),
    (b"5.15.0-91-generic", (5, 15, 0)),
])
def test_kernel_releases_parse_to_their_numeric_part(release, expected):
    assert versions.parse_kernel(release) == expected


@pytest.mark.parametrize("release", ["", "   ", None, "linux", "5", "-5.4.0", "generic-5.4.0", "v.5.4", "5.x.0"])
def test_unreadable_kernel_release_raises_version_error_naming_it(release):
    with pytest.raises(versions.VersionError) as err:
        versions.parse_kernel(release)
    assert "kernel" in str(err.value)


@pytest.mark.parametrize("output, expected", [
    ("containerd containerd.io 1.6.28 ae07eda36dd25f8a1b98dfbf587313b99c0190bb", (1, 6, 28)),
    ("containerd github.com/containerd/containerd 1.7.12", (1, 7, 12)),
    ("1.6.20~ds1", (1, 6, 20)),
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", (1, 6, 20)),
    ("containerd github.com/containerd/containerd v1.7.11-k3s2 64b8a811b07ba6288238eefc14d898ee0b5b99ba", (1, 7, 11)),
    ("containerd github.com/containerd/containerd 1.5\nsecond line 9.9.9", (1, 5, 0)),
])
def test_containerd_version_output_parses(output, expected):
    assert versions.parse_containerd(output) == expected


@pytest.mark.parametrize("output", [
    "", None, "containerd", "containerd github.com/containerd/containerd",
    "containerd containerd.io ae07eda36dd25f8a", "command not found", "containerd 1..2",
])
def test_unreadable_containerd_output_raises_version_error(output):
    with pytest.raises(versions.VersionError) as err:
        versions.parse_containerd(output)
    assert "containerd" in str(err.value)


def test_a_commit_hash_is_not_taken_for_a_version():
    assert versions.parse_containerd("containerd containerd.io 1.6.28 1234567.89abcdef") == (1, 6, 28)


@pytest.mark.parametrize("a, b, result", [
    ("5.4.0", (5, 4, 0), 0),
    ("1.21", "1.21.1", -1),
    ("v1.27.4+k3s1", "1.21.0", 1),
    ("1.10.0", "1.9.9", 1),
    ((6, 8), "6.8.0", 0),
])
def test_compare_orders_numerically(a, b, result):
    assert versions.compare(a, b) == result


def test_at_least_and_format():
    assert versions.at_least("5.15.0", "5.4.0")
    assert not versions.at_least((4, 15, 0), "5.4.0")
    assert versions.format_version((1, 6)) == "1.6.0"


@pytest.mark.parametrize("value", [(True, 1), (1, -2, 0), (1, 2, 3, 4), (), "abc", "x.y"])
def test_parse_version_rejects_non_versions(value):
    with pytest.raises(versions.VersionError):
        versions.parse_version(value)


@pytest.mark.parametrize("nodes, target, refused", [
    ({"s1": "v1.30.4+k3s1", "a1": "v1.30.4+k3s1"}, "v1.31.2+k3s1", []),      # one minor forward
    ({"s1": "v1.31.2+k3s1", "a1": "v1.30.4+k3s1"}, "v1.31.2+k3s1", []),      # a re-run after a partial upgrade
    ({"s1": "v1.31.2+k3s1"}, "v1.31.2+k3s2", []),                             # a k3s rebuild of the same release
    ({"s1": "v1.31.2+k3s2"}, "v1.31.2+k3s1", ["s1"]),                         # back to an older rebuild
    ({"s1": "v1.31.2+k3s1", "a1": "v1.31.5+k3s1"}, "v1.31.3+k3s1", ["a1"]),   # a patch downgrade on one node
    ({"s1": "v1.29.9+k3s1", "a1": "v1.30.4+k3s1"}, "v1.31.2+k3s1", ["s1"]),   # skips 1.30 on s1
    ({"s1": "v1.30.4+k3s1"}, "v2.0.0+k3s1", ["s1"]),                          # another major release
    ({"s1": "unknown"}, "v1.31.2+k3s1", ["s1"]),
])
def test_k3s_upgrade_refusals(nodes, target, refused):
    messages = versions.k3s_upgrade_refusals(nodes, target)
    assert [m.split()[1].rstrip(":") for m in messages] == refused
    for message in messages:
        assert target in message or "cannot read" in message


def test_k3s_upgrade_refusals_names_the_way_forward():
    [message] = versions.k3s_upgrade_refusals({"s1": "v1.29.9+k3s1"}, "v1.31.2+k3s1")
    assert "upgrade to v1.30.x first" in message and "docs.k3s.io/upgrades/manual" in message
