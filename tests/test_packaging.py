"""
The built wheel: a plain, non-editable install into a new virtual
environment ships the twistd plugin, and a stale plugin cache does not hide
it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from twisted.trial.unittest import TestCase

ROOT = Path(__file__).resolve().parent.parent

#: The environment of the new virtualenv's processes: without PYTHONPATH,
#: which trial's parallel workers set to the source tree.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


class WheelInstallTests(TestCase):
    def setUp(self) -> None:
        self.work = Path(self.mktemp()).resolve()
        self.work.mkdir()
        # Build from a private copy: setuptools writes build/ and egg-info
        # into the source tree, and parallel test workers would collide there.
        source = self.work / "source"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".venv*", ".git", "_trial_temp*", "build", "*.egg-info", "__pycache__",
            "tests", "bench", ".mypy_cache", ".ruff_cache", ".hypothesis", "var"))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "-w", str(self.work / "dist"), str(source)],
            check=True, capture_output=True, timeout=300)
        [self.wheel] = (self.work / "dist").glob("mrs_server-*.whl")
        venv = self.work / "venv"
        subprocess.run([sys._base_executable, "-m", "venv", str(venv)],  # type: ignore[attr-defined]
                       check=True, capture_output=True, timeout=120)
        self.python = venv / "bin" / "python"
        subprocess.run([str(self.python), "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-index", str(self.wheel)],
                       check=True, capture_output=True, timeout=300)
        # The dependencies come from the test environment, appended after
        # the new environment's own site-packages, so that "mrs" is imported
        # from the wheel and never from the source tree.
        purelib = Path(subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True, env=CLEAN_ENV).stdout.strip())
        (purelib / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
        self.purelib = purelib

    def twistd(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.python), "-c",
             "import sys; from twisted.scripts.twistd import run; "
             "sys.argv[0] = 'twistd'; run()", *args],
            capture_output=True, text=True, timeout=120, cwd=str(self.work), env=CLEAN_ENV)
        return result.stdout + result.stderr

    def test_wheelShipsPlugin(self) -> None:
        """
        The wheel holds the plugin module, and twistd from the new
        environment lists mrs and imports the package from the wheel.
        """
        self.assertTrue((self.purelib / "twisted" / "plugins" / "mrs_plugin.py").exists())
        self.assertFalse((self.purelib / "twisted" / "plugins" / "__init__.py").exists())
        self.assertRegex(self.twistd("--help"), r"\n\s+mrs\s+Relay live video")
        located = subprocess.run([str(self.python), "-c", "import mrs; print(mrs.__file__)"],
                                 capture_output=True, text=True, cwd=str(self.work),
                                 env=CLEAN_ENV, check=True).stdout.strip()
        self.assertTrue(located.startswith(str(self.purelib)), located)

    def test_staleCacheIgnored(self) -> None:
        """
        A corrupt dropin.cache in the plugins folder does not hide the
        plugin.
        """
        cache = self.purelib / "twisted" / "plugins" / "dropin.cache"
        cache.write_bytes(b"not a pickle at all")
        self.assertRegex(self.twistd("--help"), r"\n\s+mrs\s+Relay live video")
