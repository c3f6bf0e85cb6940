"""The keyward binary carries the compiler's protections, whatever the
build type: a position-independent executable (ELF type DYN, so ASLR moves
it), a GOT resolved at start and then read-only (BIND_NOW + GNU_RELRO),
stack canaries (it imports __stack_chk_fail) and fortified libc calls (it
imports at least one __*_chk function).  Inspected with binutils' readelf,
on the binary this build produced (KEYWARD_BIN).

The binary does not depend on the store backend, so the PostgreSQL run of
this file reports itself skipped."""
import re
import shutil
import subprocess
import sys
import unittest

import kwtest


def readelf(*args):
    return subprocess.run(["readelf", "-W"] + list(args) + [kwtest.BIN], check=True,
                          capture_output=True, text=True).stdout


class TestHardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("readelf"):
            raise unittest.SkipTest("readelf (binutils) is not installed")

    def test_pie(self):
        header = readelf("-h")
        self.assertRegex(header, r"Type:\s+DYN", header)
        # a PIE has an interpreter; a shared library would not
        self.assertIn("INTERP", readelf("-l"))

    def test_full_relro(self):
        self.assertIn("GNU_RELRO", readelf("-l"))
        dyn = readelf("-d")
        bind_now = re.search(r"\(BIND_NOW\)", dyn) or re.search(r"\(FLAGS\).*\bBIND_NOW\b", dyn) \
            or re.search(r"\(FLAGS_1\).*\bNOW\b", dyn)
        self.assertTrue(bind_now, dyn)

    def imports(self):
        syms = readelf("--dyn-syms")
        return {m.group(1) for m in re.finditer(r"\bUND\s+([^@\s]+)", syms)}

    def test_stack_protector(self):
        self.assertIn("__stack_chk_fail", self.imports())

    def test_fortify(self):
        chk = sorted(s for s in self.imports() if re.fullmatch(r"__\w+_chk", s)
                     and s != "__stack_chk_fail")
        print("\nfortified imports: %s" % ", ".join(chk))
        self.assertTrue(chk, "no __*_chk import: built without _FORTIFY_SOURCE (or -O0)")


if __name__ == "__main__":
    if kwtest.BACKEND == "postgresql":
        print("SKIPPED: the binary's hardening does not depend on the backend")
        sys.exit(kwtest.SKIP_EXIT)
    unittest.main(verbosity=2)
