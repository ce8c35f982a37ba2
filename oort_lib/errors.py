"""The one exception tree of oort-sync.

Every class says what the caller should do next: its ``exit_code`` (the README's "Exit
codes" table, defined here and nowhere else) and whether it is ``transient`` (retry
later / back off) or not (give up on this request until something changes).
"""

from __future__ import annotations

# The exit codes of the README's "Exit codes" table, never renumbered.
EXIT_OK = 0
EXIT_FILES_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_SOFTWARE = 70  # EX_SOFTWARE of sysexits.h: a bug of oort-sync, traceback in the log
EXIT_LOCKED = 75
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "all done, or nothing to do (deferred files included)",
    EXIT_FILES_FAILED: "the run finished but some files failed (they will be retried)",
    EXIT_USAGE: "usage or configuration error",
    EXIT_AUTH: "authentication or permission refused (bad or revoked key, not a member)",
    EXIT_UNREACHABLE: ("the server stayed unreachable, busy or unresponsive after retries; nothing "
                       "more was attempted"),
    EXIT_SOFTWARE: "internal error (a bug): one line on stderr, the traceback in the log",
    EXIT_LOCKED: "another run holds the lock, or another program keeps the manifest busy",
    EXIT_SIGINT: "interrupted by SIGINT (in-flight files are retried next run)",
    EXIT_SIGTERM: "interrupted by SIGTERM (in-flight files are retried next run)",
}


class OortError(Exception):
    """Base class: a message meant for a person, an exit code and a transient flag."""

    exit_code: int = EXIT_FILES_FAILED
    transient: bool = False
    # Ends the whole run (not just one file): the key, the server or the setup is wrong.
    fatal: bool = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OortError):
    """The command line asks for something impossible."""

    exit_code = EXIT_USAGE


class ConfigError(OortError):
    """A setting, the config file or the watched folders are wrong."""

    exit_code = EXIT_USAGE


class ManifestError(OortError):
    """The manifest database is unreadable or damaged."""

    exit_code = EXIT_USAGE


class ManifestBusy(OortError):
    """Another program (an `sqlite3` shell, a backup) keeps the manifest locked."""

    exit_code = EXIT_LOCKED


class LockHeld(OortError):
    """Another run holds the run lock."""

    exit_code = EXIT_LOCKED


class Aborted(OortError):
    """An upload was cut short because the run is stopping (retried next run)."""

    transient = True

    def __init__(self, message: str = "upload cut short by the stop"):
        super().__init__(message)


# --- per-file problems: never fatal for the run ---------------------------------------


class FileProblem(OortError):
    """A local file cannot be used as it is: a permanent property of its content
    (corrupt or truncated header, not FITS, no date).

    The file is skipped with `reason` (the message without the path, for listings that
    show the path already) until it changes; the other files go on.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class LocalTransient(FileProblem):
    """A local problem that may go away by itself: an I/O error, a file that vanished or
    moved, permission denied, a file locked by another program.

    Classified like a remote TransientError: the file is recorded failed (transient),
    retried by later runs with the same backoff, and the run exits 1 while it lasts;
    never skipped, never failed for good.
    """

    transient = True


class FileChanged(LocalTransient):
    """The file changed while it was being read: it waits, like a file being written."""


class NotWhole(FileProblem):
    """The file is not a whole frame: it ends before its structure does (a FITS data
    unit or an XISF attachment past the end, a compressed stream without its end), or
    its bytes contradict it (a gzip check value, a DATASUM/CHECKSUM that does not match).

    `short` is True when the file may still be arriving (it ends early): the planner
    defers it for `partial_wait`, then reports it as a problem; False when the content
    itself is wrong (a problem at once). Never uploaded either way.
    """

    def __init__(self, message: str, reason: str | None = None, *, short: bool = False):
        super().__init__(message, reason)
        self.short = short


class ChecksumMismatch(NotWhole):
    """A FITS HDU's DATASUM or CHECKSUM does not match its bytes (found while they stream
    to the server: the upload is cut before its body completes, so nothing is stored)."""


class NotPlanned(LocalTransient):
    """The path now holds another file than the one planned (another device/inode: a
    symlink or a copy swapped in): nothing is sent, it is planned again next run."""


def local_problem(exc: OSError, doing: str = "read") -> LocalTransient:
    """The LocalTransient of an OSError met on a watched file (`doing`: "read",
    "upload"...). Every OSError of a file that passed the walk is transient: the same file
    read a moment later may well work (a disk waking up, a USB hiccup, a lock released)."""
    if isinstance(exc, PermissionError):
        why = "permission denied"
    elif isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        why = f"vanished (moved or deleted) before its {doing}"
    else:
        why = f"unreadable: {exc.strerror or exc}"
    return LocalTransient(why, why)


# --- remote problems (raised by arcsecond/) --------------------------------------------


class RemoteError(OortError):
    """The server refused or failed a request. ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(RemoteError):
    """Worth retrying later: 5xx, 429, timeout, connection reset. The subclasses say
    which it is (run/reasons.py groups failed files by them); a plain TransientError
    says it in its message only."""

    transient = True


class Timeout(TransientError):
    """No answer within `seconds` (one read's timeout): the server is slow or stuck."""

    def __init__(self, where: str, seconds: float):
        super().__init__(f"{where}: no answer within {seconds:g} s")
        self.seconds = seconds


class Trickling(TransientError):
    """No complete answer within `seconds` (the whole answer's deadline: a server that
    sends, too slowly ever to end; arcsecond/deadline.py)."""

    def __init__(self, where: str, seconds: float):
        super().__init__(f"{where}: no complete answer within {seconds:g} s "
                         "(the server trickles)")
        self.seconds = seconds


class NotJson(TransientError):
    """A 2xx whose body is not JSON: a proxy's page, or a broken server."""


class ConnectionFailed(TransientError):
    """The connection failed before an answer came. `kind` says how (one of KINDS), or
    is None when the cause names none of them."""

    # Each kind by the words that name it in what requests, urllib3 and the OS say,
    # looked for in this order: urllib3 nests the OS's exception in its own, so its
    # words are all that reaches the client of the cause's type.
    WORDS = (("reset", "reset"), ("refused", "refused"), ("aborted", "aborted"),
             ("broken pipe", "broken pipe"), ("name or service", "name not found"),
             ("resolve", "name not found"), ("timed out", "timed out"), ("ssl", "tls"),
             ("certificate", "certificate"))
    KINDS = tuple(dict.fromkeys(kind for _words, kind in WORDS))

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind

    @classmethod
    def kind_in(cls, text: str) -> str | None:
        """The kind of failure `text` names first (see WORDS), or None."""
        lowered = text.lower()
        return next((kind for words, kind in cls.WORDS if words in lowered), None)


class ServerUnreachable(TransientError):
    """Retries were exhausted without a single answer from the server: stop the run."""

    exit_code = EXIT_UNREACHABLE
    fatal = True


class ServerBusy(ServerUnreachable):
    """The run's budget of throttled or unanswered requests is spent (arcsecond/budget.py):
    nothing more is sent this run, the files not sent stay pending for the next one."""


class ServerProblem(TransientError):
    """The server answered, but nothing usable came of it: an answer not in the API's
    shape (MalformedAnswer), or, for a command outside a run, errors or incomplete
    answers through every retry (server_problem). The server's problem, neither a bug of
    oort-sync nor a file's: in a run, the files that need the answer wait and are
    retried later (transient); a command ends with exit code 4, like no answer at all."""

    exit_code = EXIT_UNREACHABLE


class MalformedAnswer(ServerProblem):
    """An answer not in the shape the API gives it: a list that is not one or goes on
    past the pages a lookup may walk, an entry that is not an object or has no uuid."""


class PermanentError(RemoteError):
    """A 4xx other than authentication: this request will fail again as it is."""


def server_problem(exc: RemoteError, what: str) -> RemoteError:
    """The error a command outside a run raises for `exc`: a ServerProblem whose message
    starts with `what` ("Not logged in") when `exc` would only mean "a file failed"
    (exit 1); any other (refused key, not found, unreachable, a ServerProblem already)
    as it is."""
    if exc.exit_code != EXIT_FILES_FAILED or isinstance(exc, NotFound):
        return exc
    return ServerProblem(f"{what}: the server gave no usable answer ({exc.message.rstrip('.')})."
                         " Try again later; if it lasts, tell whoever runs the server.",
                         exc.status)


class NotFound(PermanentError):
    """404: the object does not exist."""


class AuthError(RemoteError):
    """The key is wrong or revoked, or the user may not write here: stop the whole run."""

    exit_code = EXIT_AUTH
    fatal = True


class Redirected(RemoteError):
    """The server answered with a redirect. Never followed (the key would go along):
    the configured API URL is wrong, and the message names where the server points."""

    exit_code = EXIT_USAGE
    fatal = True


class InsecureAddress(RemoteError):
    """Plain http:// to a name that resolves to a public address: the key would cross the
    internet in clear. Nothing is sent; the API URL must change (https://, or the LAN
    address)."""

    exit_code = EXIT_USAGE
    fatal = True


class PlainHttpServer(RemoteError):
    """The API URL says https://, and the server there speaks plain http (Arcsecond.local
    is served so): no TLS handshake can succeed, and retrying will not help. The API URL
    must change (http://, with --allow-http on a LAN)."""

    exit_code = EXIT_USAGE
    fatal = True


class WrongGeneration(RemoteError):
    """A route of the API generation in use does not exist on this server (404): the
    server speaks the other generation. Detect again, or set ``api_dialect``."""

    exit_code = EXIT_USAGE
    fatal = True


class AlreadyExists(RemoteError):
    """The datafile is already in the dataset: for oort-sync this means already synced."""

    exit_code = EXIT_OK
