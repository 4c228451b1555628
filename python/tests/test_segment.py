"""Segments, heap and registry."""

import os
import subprocess
import sys

import numpy as np
import pytest

import shmkit
from conftest import ROOT, seg_name


def test_info_attached_and_context_manager(name):
    with shmkit.Segment(name, create=True, size=256 << 10) as seg:
        info = seg.info()
        assert info.len == 256 << 10 and info.backend == "posix"
        assert info.creator_pid == os.getpid() and info.name == name
        att = seg.attached()
        assert [a.pid for a in att if a.alive] == [os.getpid()]
        with shmkit.open(name) as again:        # create-or-open: opens
            assert again.info().attached == 2
            assert again.size == seg.size
        seg.check()
        assert seg.fileno() >= 0 and seg.base
    assert seg.closed
    shmkit.unlink(name)
    assert not os.path.exists("/dev/shm/" + name)


def test_registry_iteration_describe_remove(seg):
    seg.ring("r", "producer", create=True, cap=4096)
    q = seg.queue("q", elem_len=16, cap=8, create=True)
    seg.mutex("m", create=True)
    objs = {o.name: o for o in seg.objects()}
    assert {k: o.kind for k, o in objs.items()} == \
        {"r": "ring", "q": "queue", "m": "mutex"}
    assert objs["q"].elem_len == 16 and objs["q"].cap == 8
    assert "fill=0/8" in objs["q"].state          # shk_obj_describe
    assert objs["m"].state.startswith("unlocked")
    assert "q" in seg and "nope" not in seg
    assert sorted(seg.names()) == ["m", "q", "r"]
    st = seg.stat("r")
    assert st.kind == "ring" and st.creator_pid == os.getpid()
    q.close()                   # nobody may use an object being removed
    seg.remove("q")
    assert sorted(seg.names()) == ["m", "r"]
    assert seg.info().nobjects == 2


def test_remove_in_use(seg):
    # a ring whose producer lives is Busy (it was removed under the
    # producer, whose writes then went into whatever reused the block)
    r = seg.ring("r", "producer", create=True, cap=4096)
    with pytest.raises(shmkit.Busy):
        seg.remove("r")
    assert "r" in seg
    r.close()
    seg.remove("r")
    assert "r" not in seg
    # force=True removes it anyway; the stale handle's close is harmless
    r = seg.ring("r2", "producer", create=True, cap=4096)
    seg.remove("r2", force=True)
    assert "r2" not in seg
    r.close()
    seg.check()


def test_heap_alloc_buffer_free(seg):
    used0 = seg.heap_info().used
    off = seg.alloc(1000)
    assert off > 0 and off % 16 == 0
    buf = seg.buffer(off, 1000)
    buf[:5] = b"hello"
    # a second view of the same offset is the same memory, not a copy
    assert bytes(seg.buffer(off, 5)) == b"hello"
    assert seg.offset(buf) == off
    a = np.frombuffer(seg.buffer(off, 1000), dtype=np.uint8)
    assert np.shares_memory(a, np.frombuffer(buf, dtype=np.uint8))
    assert a.ctypes.data == seg.base + off
    assert seg.heap_info().used > used0
    seg.free(off)
    with pytest.raises(shmkit.InvalidArgument):
        seg.free(off)                              # double free detected
    with pytest.raises(ValueError):
        seg.buffer(seg.size - 4, 100)              # past the end
    with pytest.raises(ValueError):
        seg.offset(bytearray(10))


def test_blob_shared_between_handles(seg, name):
    b = seg.blob("raw", size=64, create=True)
    b[:3] = b"abc"
    with shmkit.Segment(name) as other:
        assert bytes(other.blob("raw")[:3]) == b"abc"
        assert other.stat("raw").kind == "blob"


def test_readonly_segment_opens_blobs_not_structures(seg, name):
    b = seg.blob("b", 16, create=True)
    b[:4] = b"abcd"
    seg.array("a", dtype=np.uint32, length=4, create=True)
    with shmkit.Segment(name, readonly=True) as ro:
        rb = ro.blob("b")                      # SHK_RDONLY: a view, read-only
        assert rb.readonly and bytes(rb[:4]) == b"abcd"
        b[0] = ord("z")
        assert bytes(rb[:1]) == b"z"           # the same memory
        with pytest.raises(TypeError):
            rb[0] = 1
        with pytest.raises(shmkit.NotPermitted):   # structures attach: writes
            ro.array("a", dtype=np.uint32)
        with pytest.raises(shmkit.NotPermitted):
            ro.blob("new", 16, create=True)
        with pytest.raises(shmkit.NotFound):
            ro.blob("nope")


_RO_WRITE = r"""
import sys
import shmkit
name = sys.argv[1]
with shmkit.Segment(name, create=True, size=1 << 20) as seg:
    off = seg.alloc(64)
    with shmkit.Segment(name, readonly=True) as ro:
        assert ro.buffer(off, 8).readonly               # the default
        assert ro.buffer(off, 8, readonly=True).readonly
        try:
            mv = ro.buffer(off, 8, readonly=False)
        except shmkit.NotPermitted:
            pass
        else:
            mv[0] = 1   # a write to a PROT_READ mapping: SIGSEGV
            raise AssertionError("a writable view of a read-only mapping")
    assert not seg.buffer(off, 8, readonly=False).readonly
    seg.unlink()
print("ok")
"""


def test_readonly_segment_refuses_a_writable_buffer(name):
    # before: buffer(readonly=False) on a readonly Segment made a writable
    # view of the PROT_READ mapping, and writing through it crashed
    from test_lifetime import run_child
    run_child(_RO_WRITE, name)


def test_views_keep_the_mapping_alive(name):
    seg = shmkit.Segment(name, create=True, size=128 << 10)
    a = seg.array("a", dtype="i8", length=16, create=True)
    v = a.numpy()
    v[:] = np.arange(16)
    seg.close()                     # closes `a`; v keeps the mapping
    assert a.closed
    assert v.sum() == 120           # still readable, no crash
    v[0] = 5
    del v                           # the last view: now really detached
    with shmkit.Segment(name) as s2:
        assert s2.array("a").numpy()[0] == 5


def test_file_and_memfd_backends(tmp_path):
    path = str(tmp_path / "seg.shk")
    with shmkit.Segment(path, create=True, backend="file",
                        size=128 << 10) as s:
        s.array("a", dtype="u4", length=4, create=True).numpy()[:] = 9
        assert s.info().backend == "file"
    with shmkit.Segment(path, backend="file") as s:
        assert list(s.array("a").numpy()) == [9, 9, 9, 9]
    shmkit.unlink(path, backend="file")
    assert not os.path.exists(path)

    with shmkit.Segment("py-memfd", backend="memfd", create=True,
                        size=128 << 10) as m:
        m.queue("q", elem_len=8, create=True).push(b"12345678")
        with shmkit.Segment.from_fd(m.fileno()) as m2:
            assert m2.backend == "memfd"
            assert m2.queue("q").pop(timeout=0) == b"12345678"


def test_sysv_backend():
    n = seg_name()
    try:
        s = shmkit.Segment(n, create=True, backend="sysv", size=128 << 10)
    except (shmkit.NotSupported, shmkit.AccessDenied, shmkit.NoSpace) as e:
        pytest.skip("SysV shm unavailable: %s" % e)
    try:
        assert s.info().backend == "sysv"
        with pytest.raises(shmkit.NotSupported):
            s.fileno()
    finally:
        s.close()
        shmkit.unlink(n, backend="sysv", missing_ok=True)


def test_info_mode_and_owner_are_the_files(name):
    # shk_seg_info's mode/owner: the file's now; create_mode: the header's
    with shmkit.Segment(name, create=True, size=128 << 10, mode=0o640) as s:
        os.chmod("/dev/shm/" + name, 0o604)
        i = s.info()
        assert (i.mode, i.create_mode) == (0o604, 0o640)
        assert (i.owner_uid, i.owner_gid) == (os.geteuid(), os.getegid())
    shmkit.unlink(name)


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root: a child switches to uid 65534")
def test_other_users_segment_needs_any_owner(name):
    # uid 65534 makes the name first, mode 0666: ours only with any_owner
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            shmkit.Segment(name, create=True, excl=True, size=128 << 10,
                           mode=0o666).close()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    try:
        for kw in ({}, {"create": True}, {"readonly": True}):
            with pytest.raises(shmkit.AccessDenied):
                shmkit.Segment(name, **kw)
        with shmkit.Segment(name, create=True, any_owner=True) as s:
            i = s.info()
            assert i.owner_uid == 65534 and i.creator_uid == 65534
    finally:
        shmkit.unlink(name)


def test_pool_blocks(seg):
    p = seg.pool("p", block_len=100, cap=3, create=True)
    assert p.block_len >= 100 and p.cap == 3
    offs = [p.alloc() for _ in range(3)]
    with pytest.raises(shmkit.NoMemory):
        p.alloc()
    p.buffer(offs[1])[:4] = b"blk1"
    assert bytes(seg.buffer(offs[1], 4)) == b"blk1"    # same memory
    assert p.info().in_use == 3
    p.free(offs[1])
    with pytest.raises(shmkit.InvalidArgument):
        p.free(offs[1])
    with pytest.raises(shmkit.InvalidArgument):
        p.buffer(offs[0] + 1)


def test_registry_iteration_lists_a_damaged_entry(seg):
    seg.blob("goodobj", 32, create=True)
    seg.blob("damagedobj", 32, create=True)
    name = seg.info().name
    # forge the entry's offset (32 bytes into the 128-byte entry, whose
    # name sits 64 bytes in) outside the heap, through the /dev/shm file
    with open("/dev/shm/" + name, "r+b") as f:
        data = f.read()
        e = data.index(b"damagedobj\0") - 64
        f.seek(e + 32)
        f.write((1 << 62).to_bytes(8, "little"))
    with pytest.raises(shmkit.Corrupt):
        seg.stat("damagedobj")
    objs = {o.name: o for o in seg.objects()}
    assert set(objs) == {"goodobj", "damagedobj"}
    assert objs["damagedobj"].state == "<SHK_ECORRUPT>"
    assert objs["goodobj"].state != "<SHK_ECORRUPT>"


def test_blob_cap_past_its_block_is_corrupt(seg):
    seg.blob("b", 64, create=True)             # elem_len 1, cap 64
    name = seg.info().name
    # a peer scribbles the entry's cap (24 bytes into the 128-byte entry,
    # whose name sits 64 bytes in): the view sized elem_len * cap reached
    # past the mapping, and touching its end crashed the process
    with open("/dev/shm/" + name, "r+b") as f:
        data = f.read()
        e = data.index(b"b\0" + bytes(62)) - 64
        f.seek(e + 24)
        f.write((1 << 32).to_bytes(8, "little"))
    child = ("import shmkit, sys\n"
             "s = shmkit.Segment(sys.argv[1])\n"
             "try:\n"
             "    v = s.blob('b')\n"
             "except shmkit.Corrupt:\n"
             "    sys.exit(3)\n"
             "print(len(v), v[len(v) - 1])\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-c", child, name], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    with pytest.raises(shmkit.Corrupt):
        seg.check()
    with pytest.raises(shmkit.Corrupt):
        seg.stat("b")


def test_remove_refuses_an_object_with_an_open_handle(seg, name):
    """seg.remove(name) while this Segment has an open handle of `name` is
    Busy: before, it freed the object's memory under the handle, and a
    blob created next reused it (the old Array's writes landed in it)."""
    a = seg.array("a", dtype=np.uint8, length=64, create=True)
    q = seg.queue("q", elem_len=8, cap=4, create=True)
    x = a.numpy()
    with pytest.raises(shmkit.Busy):
        seg.remove("a")
    with pytest.raises(shmkit.Busy):
        seg.remove(b"q")
    assert "a" in seg and "q" in seg
    b = seg.blob("b", size=64, create=True)
    x[:] = 7                           # the array's memory, not the blob's
    assert bytes(b) == bytes(64)
    a.close()
    seg.remove("a")                    # closed: removed
    assert "a" not in seg
    q.close()
    seg.remove("q")
    with pytest.raises(shmkit.NotFound):
        seg.remove("a")
    # a handle in another Segment is not seen (documented)
    seg.mutex("m", create=True).close()
    with shmkit.Segment(name) as other:
        m = other.mutex("m")
        seg.remove("m")
        m.close()
