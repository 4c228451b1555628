"""Every struct the binding mirrors has the C layout (sizeof, offsetof of
every field, as the C peer compiled against shmkit.h reports them)."""

import ctypes
import json

from shmkit import _lib
from conftest import run_peer


def test_struct_layouts_match_c():
    c = json.loads("\n".join(run_peer("layout")))
    assert set(c) == set(_lib.STRUCTS), "structs mirrored vs reported"
    for cname, py in _lib.STRUCTS.items():
        want = c[cname]
        assert ctypes.sizeof(py) == want["sizeof"], cname
        got = {f[0]: getattr(py, f[0]).offset for f in py._fields_}
        assert got == want["fields"], cname
        # the options/stats protocol: the first field is the struct's size
        assert py().size == want["sizeof"], cname
