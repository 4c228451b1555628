"""Channels: messages between processes (pair, pub/sub, push/pull) with
zero-copy loans (shk_chan_*, docs/chan.md)."""

import ctypes
import os
import warnings
import weakref

from . import _lib as L
from ._base import U32_MAX, Closable, HandleOwner, NoCopy, Region, cbuf, \
    cint, cname, inflight, record_type, timed
from ._lib import lib
from .errors import Busy, ShkError, check
from .segment import SHK_ANY_OWNER

__all__ = ["Chan", "Message", "ChanStats", "PAIR", "PUBSUB", "PUSHPULL"]

PAIR, PUBSUB, PUSHPULL = 1, 2, 3
_PATTERNS = {"pair": PAIR, "pubsub": PUBSUB, "pushpull": PUSHPULL,
             PAIR: PAIR, PUBSUB: PUBSUB, PUSHPULL: PUSHPULL}
_ROLES = {"a": 1, "b": 2, "pub": 3, "sub": 4, "push": 5, "pull": 6}
_ROLE_PATTERN = {1: PAIR, 2: PAIR, 3: PUBSUB, 4: PUBSUB, 5: PUSHPULL,
                 6: PUSHPULL}
_MODES = {None: 0, "lossy": 1, "reliable": 2}

ChanStats = record_type("ChanStats", L.ChanStats)


class _ChanHandle(HandleOwner):
    """Owns the C channel handle, whose shk_chan_close unmaps the
    channel's segment and frees a subscriber's receive buffer.  Chan holds
    one reference and every view of a message's memory holds one (through
    its ctypes array), so shk_chan_close runs only when the Chan is closed
    AND no view of that memory remains (as segment.py's _Mapping): a view
    never points at unmapped or freed memory.
    """

    __slots__ = ()
    _close = "shk_chan_close"


class Message(NoCopy):
    """A message of a channel: received (read-only view, in place) or
    loaned (writable view onto a heap block of the segment).

    `data` is a memoryview of the message's bytes, valid until release()
    (or, for a loan, send()); after that it is released and unusable.
    Use as a context manager to release it; bytes(msg) copies it out.
    A view made from `data` (a slice, a NumPy array) cannot be revoked:
    after the release it sees whatever the channel puts there next, and it
    keeps the channel's memory mapped (and the handle open) until it goes.
    A message garbage-collected unreleased is released by its channel's
    next call (or close), with a ResourceWarning.
    """

    __slots__ = ("_chan", "_m", "_ref", "_view", "loan", "__weakref__")

    def __init__(self, chan, m, loan):
        self._chan = chan
        self._m = m
        self._ref = weakref.ref(self)  # its token in chan._msgs
        self.loan = loan
        n = lib.shk_msg_len(m)
        if n:
            # a slice of the view of the channel's segment (Region), or
            # of its own view where the bytes lie elsewhere (a
            # subscriber's buffer); either keeps chan._keep, which maps
            # the memory: see above
            self._view = chan._region.slice(lib.shk_msg_data(m), n,
                                            not loan)
        else:
            self._view = memoryview(bytearray()) if loan else \
                memoryview(b"")
        # C handed m out again: whoever had it before let it go in C
        # (sent, released) without the bookkeeping (an interrupt)
        if m in chan._msgs:
            _neutralise(chan, m)
        # Registered, then the out-parameter cleared, with no call in
        # between (the interpreter runs signal handlers only as a call
        # returns): a non-NULL out-parameter means a message no Message
        # owns (Chan._settle_out).
        chan._msgs[m] = self._ref
        chan._out.value = None

    def _handle(self):
        if not self._m:
            raise ValueError("message already released or sent")
        return self._m

    @property
    def data(self):
        self._handle()
        return self._view

    def __len__(self):
        self._handle()
        return self._view.nbytes

    def __bytes__(self):
        return bytes(self.data)

    def _owns(self):
        """Whether the channel's record of self._m is this message (not
        stale: a C message is pooled and handed out again once sent or
        released)."""
        return self._chan._msgs.get(self._m) is self._ref

    def _forget(self):
        m, self._m = self._m, None
        msgs = self._chan._msgs
        if msgs.get(m) is self._ref:
            del msgs[m]
        try:
            self._view.release()
        except (BufferError, ValueError):
            pass  # exported further (e.g. to NumPy): cannot revoke

    def release(self):
        """Give the message back (a loan not sent is freed).  Twice is
        fine, and so is after the channel's close (which released it)."""
        if self._m:
            self._chan._release(self)

    def send(self, timeout=None):
        """(Loans) send this message: only its offset travels.  On success
        it is consumed; on an error it stays yours to retry or release."""
        if not self.loan:
            raise ValueError("only a loaned message can be sent")
        self._handle()
        self._chan._send_loan(self, timeout)

    def __del__(self):
        # Dropped unreleased (an exception, a forgotten `with`): a received
        # pair or pub/sub message would make every recv Busy, a loan would
        # hold its heap block.  No C call here: the garbage collector may
        # run this in any thread, or after the channel's close; the
        # channel releases it on its next call, in the thread that uses it
        # (and never after shk_chan_close, which releases it anyway).
        # No call before the append either: a signal handler may raise as
        # any call returns, and this one would then be lost (the end
        # Busy for good).
        try:
            m = self._m
            if not m:
                return
            self._m = None
            msgs = self._chan._msgs
            if m not in msgs or msgs[m] is not self._ref:
                return  # stale: C took it back already (see _neutralise)
            del msgs[m]
            self._chan._orphans.append(m)
        except Exception:
            return  # __init__ failed before registering: not ours
        try:
            self._view.release()
        except Exception:
            pass  # exported further: cannot revoke
        try:
            warnings.warn("unreleased shmkit.Message of channel %r: release"
                          " it, or use `with`" % (self._chan.addr,),
                          ResourceWarning, source=self)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        state = "%d bytes" % self._view.nbytes if self._m else "released"
        return "<shmkit.Message %s%s>" % ("loan, " if self.loan else "",
                                          state)


def _neutralise(chan, m):
    """The Message recorded for C message m, if any, has lost it: C took m
    back (sent or released, the bookkeeping cut short by an interrupt) and
    handed it out again.  Made released, with no C call: its release()
    and __del__ then leave the new holder alone."""
    ref = chan._msgs.pop(m, None)
    msg = ref() if ref is not None else None
    if msg is not None and msg._m == m:
        msg._forget()


class Chan(Closable):
    """One end of a channel (shk_chan_open).

    Chan(addr, role, pattern=None, seg_size=None, cap=None, max_msg=None,
         inline_max=None, mode=None, max_subs=None, type_id=0,
         seg_mode=None, any_owner=False)

    addr is "shm://SEGMENT/CHANNEL"; the first opener creates the segment
    and the channel.  role: "a"/"b" (pair), "pub"/"sub" (pubsub),
    "push"/"pull" (pushpull); the pattern follows from the role unless
    given.  mode (pubsub): "lossy" (default) or "reliable".  Timeouts are
    seconds: None waits forever, 0 only tries (WouldBlock).
    seg_mode: permission bits of the segment if this opener creates it
    (default 0o600); any_owner=True (SHK_ANY_OWNER) opens a segment that
    another user owns (ends of different users).

    send(data) copies; recv() -> Message (read in place where the channel
    allows; release it); recv_bytes() -> bytes; loan(n) -> a writable
    Message to fill and .send().  A handle is for one thread at a time.
    """

    def __init__(self, addr, role, pattern=None, seg_size=None, cap=None,
                 max_msg=None, inline_max=None, mode=None, max_subs=None,
                 type_id=0, seg_mode=None, any_owner=False):
        self._init_guard()
        # the messages handed out and not yet released, by C message
        # (unique while outstanding): a weak reference each, so that a
        # message dropped unreleased still reaches its __del__ (a dict of
        # weakref.ref costs half what a WeakSet does per message)
        self._msgs = {}
        self._orphans = []  # C messages of ones collected unreleased
        self._pid = os.getpid()  # a forked child's copy releases nothing
        self._h = None
        self._keep = None
        self._region = None
        self._out = ctypes.c_void_p()  # recv's and loan's out-parameter,
        self._pout = ctypes.byref(self._out)  # made once (one thread)
        if not isinstance(addr, (str, bytes)):
            raise TypeError("addr must be a str or bytes "
                            "'shm://SEGMENT/CHANNEL', not %s"
                            % type(addr).__name__)
        try:
            self.role = _ROLES[role]
        except (KeyError, TypeError):
            raise ValueError("role must be one of %s, not %r"
                             % (", ".join(_ROLES), role)) from None
        if pattern is None:
            self.pattern = _ROLE_PATTERN[self.role]
        else:
            try:
                self.pattern = _PATTERNS[pattern]
            except (KeyError, TypeError):
                raise ValueError("pattern must be pair, pubsub or pushpull,"
                                 " not %r" % (pattern,)) from None
        o = L.ChanOpts()
        try:
            o.mode = _MODES[mode]
        except (KeyError, TypeError):
            raise ValueError("mode must be 'lossy' or 'reliable'") from None
        for f, v in (("seg_size", seg_size), ("cap", cap),
                     ("max_msg", max_msg), ("inline_max", inline_max)):
            if v is not None:
                setattr(o, f, cint(v, f))
        if max_subs is not None:
            o.max_subs = cint(max_subs, "max_subs", 0, U32_MAX)
        o.type_id = cint(type_id, "type_id")
        if seg_mode is not None:
            o.seg_mode = cint(seg_mode, "seg_mode", 0, 0o777, oct)
        o.flags = SHK_ANY_OWNER if any_owner else 0
        self.addr = addr if isinstance(addr, str) else \
            addr.decode("utf-8", "replace")
        out = ctypes.c_void_p()
        check(lib.shk_chan_open(cname(addr), self.pattern, self.role,
                                ctypes.byref(o), ctypes.byref(out)),
              "chan %r" % (self.addr,))
        self._keep = _ChanHandle(out.value)
        self._h = out.value
        seg = lib.shk_chan_seg(self._h)
        ss = L.SegStats()
        check(lib.shk_seg_info(seg, ctypes.byref(ss)), "chan segment")
        self._region = Region(self._keep, lib.shk_seg_base(seg), ss.len)
        st = self.stat()
        self.max_msg = st.max_msg
        self.inline_max = st.inline_max

    def _handle(self):
        """The C handle, for a call inside an @inflight method; first
        releases the messages collected unreleased (see Message)."""
        if self._closing:
            raise self._closed_error()
        if self._orphans:
            self._reap()
        return self._h

    def _settle_out(self):
        """A message recv() or loan() got from C that no Message owns (an
        exception between the C call and the registration, which clears
        the out-parameter): given back (by recv()/loan() as they fail,
        or if that was interrupted too, by the next recv(), loan() or
        close()).  Released first, cleared after: an
        interrupt in between leaves it for the next call, and a second
        release of a message C took back is a no-op (src/chan.c: an idle
        message); C hands it out again only in a later recv or loan,
        which settles this first."""
        m = self._out.value
        if m:
            if m in self._msgs:
                _neutralise(self, m)  # a stale record: C handed m out
            lib.shk_msg_release(m)
            self._out.value = None

    def _reap(self):
        self._settle_out()
        orphans = self._orphans
        msgs = self._msgs
        while orphans:
            m = orphans.pop()
            # Not if handed out again and owned meanwhile (a stale message
            # whose __del__ ran in another thread as its C message was
            # handed out: the owner is the new Message)
            if m not in msgs:
                lib.shk_msg_release(m)

    def _closed_error(self):
        return ValueError("channel %r is closed"
                          % (getattr(self, "addr", None),))

    @inflight
    def send(self, data, timeout=None):
        """Copy bytes-like data into one message and send it."""
        ptr, n = cbuf(data)
        timed("chan send", lib.shk_chan_send, self._handle(), ptr, n,
              timeout=timeout, owner=self)

    @inflight
    def recv(self, timeout=None):
        """The next message, as a Message to read and release()."""
        h = self._handle()
        if self._out.value:
            self._settle_out()  # before C writes the out-parameter again
        try:
            timed("chan recv", lib.shk_chan_recv, h,
                  self._pout, timeout=timeout, owner=self)
            return Message(self, self._out.value, False)
        except Busy as e:
            e.context = ("chan recv: a received message is still held "
                         "(release() it, or use `with`, before the next "
                         "recv)")
            raise
        except BaseException:
            # KeyboardInterrupt, ... after the C recv took a message:
            # given back now (or, if interrupted again, at the next call)
            self._settle_out()
            raise

    def recv_bytes(self, timeout=None):
        """The next message as bytes (one copy; released at once)."""
        with self.recv(timeout) as m:
            return bytes(m.data)

    @inflight
    def loan(self, nbytes):
        """A message of nbytes to write in place (a heap block): fill
        msg.data, then msg.send() (no copy) or msg.release()."""
        n = cint(nbytes, "nbytes")
        h = self._handle()
        if self._out.value:
            self._settle_out()  # as in recv
        try:
            check(lib.shk_msg_loan(h, n, self._pout), "msg loan")
            return Message(self, self._out.value, True)
        except BaseException:
            self._settle_out()  # as in recv
            raise

    @inflight
    def _send_loan(self, msg, timeout):
        h = self._handle()
        if not msg._owns():
            msg._forget()  # C took it back and handed it out again
            msg._handle()  # raises ValueError
        m = msg._m
        try:
            timed("msg send", lib.shk_msg_send, h, m, timeout=timeout,
                  owner=self)
            msg._forget()  # inside: a handler may raise as it is entered
        except ShkError:
            raise  # the C call's own error: not sent, still the caller's
        except BaseException:
            # KeyboardInterrupt, ...: maybe after the C send consumed the
            # loan (its return code is lost).  C then pooled the message,
            # whose data it set to NULL (src/chan.c msg_put); a loan's
            # data is never NULL (a heap block).  The struct stays the
            # handle's until shk_chan_close, and no loan or recv ran
            # since, so it is still this message's to look at.
            if msg._m and not lib.shk_msg_data(m):
                msg._forget()
            raise

    def _release(self, msg):
        """msg.release(): as @inflight, but a no-op once closing (the
        close releases it).  The C release first, the bookkeeping after:
        an interrupt in between leaves the Message recorded, and a second
        release of a C message taken back is a no-op (src/chan.c: idle);
        a stale Message (its C message handed out again since) is only
        forgotten."""
        calls = self._calls
        calls.append(None)
        try:
            if not self._closing:
                m = msg._m
                if m:
                    # no call before the C release (a signal handler may
                    # raise as any call returns or as a function starts)
                    msgs = self._msgs
                    if m in msgs and msgs[m] is msg._ref:
                        lib.shk_msg_release(m)
                    msg._forget()
        finally:
            del calls[-1]
            if self._closing and not calls:
                self._finish()

    @inflight
    def fileno(self):
        """(Receiving roles) a descriptor that polls readable when a
        message may be there; use with recv(timeout=0)."""
        return check(lib.shk_chan_fd(self._handle()), "chan fd")

    @inflight
    def prefault(self):
        """Touch every page of the channel's segment now (shk_seg_prefault
        on shk_chan_seg), so that a latency-sensitive party takes no page
        fault on its first messages.  Returns 0."""
        return check(lib.shk_seg_prefault(lib.shk_chan_seg(self._handle())),
                     "chan prefault")

    @inflight
    def stat(self):
        """ChanStats: pattern, role, geometry and this handle's counters."""
        st = L.ChanStats()
        check(lib.shk_chan_stat(self._handle(), ctypes.byref(st)), "stat")
        return ChanStats(**st.to_dict())

    def __iter__(self):
        """Yields received messages as bytes, waiting forever."""
        while True:
            yield self.recv_bytes()

    def close(self):
        """Release outstanding messages and close the handle (the channel
        stays in its segment).  While a view made from a message's data
        (a slice, a NumPy array) is still referenced, the C handle, with
        its roles and its mapping, is closed only when the last one goes,
        so that no view ever reads unmapped memory.  A call another thread
        is inside ends with ValueError (see Closable)."""
        super().close()

    def _free(self):
        keep = self._keep
        # The C handle is open here: even when the garbage collector
        # finalized _keep first, its C close waits until after every
        # finalizer (HandleOwner._close_now).
        live = keep is not None and keep.h
        # In a forked child (its finalizers run at exit, or it closes
        # what it inherited) the messages are the parent's, which goes
        # on using them: only shk_chan_close, which frees just the
        # child's copy there, runs.
        live = live and os.getpid() == self._pid
        for ref in list(self._msgs.values()):
            msg = ref()
            if msg is None:
                continue  # collected: its __del__ made it an orphan
            m = msg._m
            msg._forget()
            if m and live:
                lib.shk_msg_release(m)
        if live:
            self._reap()  # and a message no Message owns (_settle_out)
        self._orphans = []
        self._h = None
        self._region = None  # holds _keep as the views do
        self._keep = None  # shk_chan_close, now or after the views

    def __repr__(self):
        return "<shmkit.Chan %r %s>" % (self.addr,
                                        "closed" if self.closed else "open")
