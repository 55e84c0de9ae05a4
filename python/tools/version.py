#!/usr/bin/env python3
"""Prints okto's version from the one place it is kept: project() in the top-level
meson.build (which also generates include/okto/version.h). python/meson.build calls this for
its own project version, so the package and the library it is built from never disagree."""
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.join(here, "..", "subprojects", "okto", "meson.build")
with open(top, encoding="utf-8") as f:
    text = f.read()
m = re.search(r"project\(\s*'okto'.*?\bversion\s*:\s*'([^']+)'", text, re.S)
if not m:
    sys.exit("version.py: no version: '...' in project() of " + top)
print(m.group(1))
