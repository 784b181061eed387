"""Offline stand-in for the get-pip.py script that ansible-test downloads to bootstrap pip.

ansible-test runs this file (cached as ~/.ansible/test/cache/get_pip_<version>.py) with the
Python of a new virtual environment and get-pip.py's arguments: pip options and the packages to
install (pip==X, setuptools==Y, wheel==Z), plus --no-setuptools / --no-wheel. It installs the
pip bundled with Python (ensurepip, in a separate process so that pip keeps the machine's
certificate settings), then lets that pip install the requested packages from the package index.
"""

import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel", "--no-pip")


def main():
    """Bootstrap pip with ensurepip, then install what get-pip.py was asked for."""
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)


if __name__ == "__main__":
    main()
