"""docs/python.md's worked example runs as written: its C program compiled
against the library under test, its Python code against that process."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, seg_name


def blocks():
    text = open(os.path.join(ROOT, "docs", "python.md")).read()
    sec = text[text.index("## Worked example"):]
    sec = sec[:sec.index("\n## ", 1)]
    c = re.findall(r"```c\n(.*?)```", sec, re.S)
    py = re.findall(r"```python\n(.*?)```", sec, re.S)
    assert len(c) == 1 and len(py) == 1
    return c[0], py[0]


def test_worked_example(tmp_path, capfd):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    libdir = os.path.dirname(os.environ["SHK_LIB"])
    csrc, pysrc = blocks()
    (tmp_path / "sum_ranges.c").write_text(csrc)
    exe = str(tmp_path / "sum_ranges")
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
                    "-I" + os.path.join(ROOT, "include"), "-o", exe,
                    str(tmp_path / "sum_ranges.c"),
                    os.path.join(libdir, "libshmkit.a"), "-lpthread"],
                   check=True)
    name = seg_name()
    code = pysrc.replace('"shk-demo-py"', repr(name)).replace(
        '"./sum_ranges"', repr(exe))
    try:
        exec(compile(code, "docs/python.md", "exec"), {})
    finally:
        import shmkit
        shmkit.unlink(name, missing_ok=True)
    out = capfd.readouterr().out
    assert "sum_ranges: 10 jobs (SHK_OK)" in out
