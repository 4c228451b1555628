"""Exceptions for shmkit's negative SHK_E* codes.

The set of codes is read from the loaded library at import (shk_errname
over the whole range of possible codes), so it cannot drift from the C
header's SHK_ERRNO_MAP: every code the library knows gets a subclass of
ShkError.  The common ones have readable names and also derive from the
matching built-in exception (Timeout is a TimeoutError, NotFound a
FileNotFoundError, ...); a code added to the header later, and not named
below, still gets a class of its own, called after its C name (e.g. EFOO).
"""

from ._lib import lib

__all__ = ["ShkError", "check", "errname", "strerror", "CODES",
           "EXCEPTIONS", "exception_for"]


def errname(code):
    """The C name of an error code ("SHK_ETYPE"), as shk_errname()."""
    return lib.shk_errname(int(code)).decode()


def strerror(code):
    """The message of an error code, as shk_strerror()."""
    return lib.shk_strerror(int(code)).decode()


class ShkError(Exception):
    """An error returned by libshmkit.

    Attributes: code (the negative SHK_E* value), name ("SHK_ETIMEDOUT"),
    message (shk_strerror), context (what the binding was doing, or None).
    """

    code = None
    name = "SHK_UNKNOWN"

    def __init__(self, code=None, context=None):
        if code is None:
            code = type(self).code if type(self).code is not None else 0
        self.code = int(code)
        self.name = errname(self.code)
        self.message = strerror(self.code)
        self.context = context
        Exception.__init__(self, self.code, self.message)
        if self.code < 0 and self.code > -1000 and isinstance(self, OSError):
            # OSError subclasses also carry the positive errno value.
            self.errno = -self.code
            self.strerror = self.message

    def __str__(self):
        s = "%s: %s" % (self.name, self.message)
        if self.context:
            s = "%s: %s" % (self.context, s)
        return s

    def __reduce__(self):
        return (type(self), (self.code, self.context))


# Readable names for the codes of the header, with the built-in exception
# each also derives from.  A name here whose code the library does not know
# is left out (tests check both directions against the header).
_NAMED = {
    "SHK_EPERM": ("NotPermitted", PermissionError),
    "SHK_ENOENT": ("NotFound", FileNotFoundError),
    "SHK_ESRCH": ("NoSuchProcess", ProcessLookupError),
    "SHK_EINTR": ("Interrupted", InterruptedError),
    "SHK_EIO": ("IOFailure", OSError),
    "SHK_EBADF": ("BadDescriptor", OSError),
    "SHK_EAGAIN": ("WouldBlock", BlockingIOError),
    "SHK_ENOMEM": ("NoMemory", MemoryError),
    "SHK_EACCES": ("AccessDenied", PermissionError),
    "SHK_EBUSY": ("Busy", None),
    "SHK_EEXIST": ("Exists", FileExistsError),
    "SHK_EINVAL": ("InvalidArgument", ValueError),
    "SHK_ENOSPC": ("NoSpace", None),
    "SHK_EPIPE": ("PeerClosed", BrokenPipeError),
    "SHK_ERANGE": ("OutOfRange", ValueError),
    "SHK_EDEADLK": ("Deadlock", None),
    "SHK_ENAMETOOLONG": ("NameTooLong", ValueError),
    "SHK_ENOSYS": ("NotImplementedBySystem", None),
    "SHK_EMSGSIZE": ("MsgSize", ValueError),
    "SHK_ENOTSUP": ("NotSupported", None),
    "SHK_ETIMEDOUT": ("Timeout", TimeoutError),
    "SHK_ECANCELED": ("Canceled", None),
    "SHK_EOWNERDEAD": ("OwnerDead", None),
    "SHK_ENOTRECOVERABLE": ("NotRecoverable", None),
    "SHK_EBADSEG": ("BadSegment", None),
    "SHK_EVERSION": ("VersionMismatch", None),
    "SHK_ECORRUPT": ("Corrupt", None),
    "SHK_ETYPE": ("TypeMismatch", TypeError),
    "SHK_EPEERDEAD": ("PeerDead", None),
    "SHK_ETRUNC": ("Truncated", None),
    "SHK_ECHECKSUM": ("ChecksumMismatch", None),
}

# Aliases users may reach for.
_ALIASES = {"Again": "WouldBlock", "Timedout": "Timeout",
            "TimedOut": "Timeout", "Invalid": "InvalidArgument"}

# Linux errno values stay below 4096; shmkit's own codes are -1000...
_SCAN = range(-1, -4096, -1)


def _build():
    codes, exceptions = {}, {}
    for code in _SCAN:
        name = errname(code)
        if name == "SHK_UNKNOWN":
            continue
        codes[name] = code
        pyname, extra = _NAMED.get(name, (name[4:], None))
        bases = (ShkError,) if extra is None else (ShkError, extra)
        doc = "%s (%d): %s" % (name, code, strerror(code))
        cls = type(pyname, bases, {"__doc__": doc, "code": code,
                                   "name": name, "__module__": __name__})
        exceptions[code] = cls
    return codes, exceptions


#: C name ("SHK_ETYPE") -> code, for every code the library knows.
CODES, EXCEPTIONS = _build()

for _code, _cls in EXCEPTIONS.items():
    globals()[_cls.__name__] = _cls
    globals()[_cls.name[4:]] = _cls          # EAGAIN, ETIMEDOUT, ... too
    globals()[_cls.name] = _code             # SHK_ETIMEDOUT = -110
    __all__ += [_cls.__name__, _cls.name[4:], _cls.name]
for _alias, _target in _ALIASES.items():
    if _target in globals():
        globals()[_alias] = globals()[_target]
        __all__.append(_alias)
__all__ = sorted(set(__all__))


def exception_for(code, context=None):
    """The exception object for a negative code (ShkError for unknown)."""
    cls = EXCEPTIONS.get(int(code), ShkError)
    return cls(code, context)


def check(rc, context=None):
    """Return rc when >= 0, else raise the exception of its code."""
    if rc < 0:
        raise exception_for(rc, context)
    return rc
