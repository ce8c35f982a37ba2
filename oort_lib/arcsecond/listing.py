"""Lists of server objects: pages followed within a bound, every entry checked.

The server's lists are plain arrays or pages linked by `next` (docs/arcsecond-api.md,
"Lists and pages"). A lookup walks at most MAX_PAGES pages: a server that pages a
filtered list without end (or ignores the filter over a huge archive) must not hold a
run for thousands of requests. And every entry is an object with a uuid, or the answer
is the server's problem (MalformedAnswer), never a KeyError deep in oort-sync.
"""

from __future__ import annotations

from oort_lib.errors import MalformedAnswer, PermanentError

# 5,000 objects at a page size of 50 (the smallest seen): a lookup is filtered, so its
# answer is a handful of objects; an unfiltered telescope list is short too.
MAX_PAGES = 100

# What a list route holds, for messages: "the server's dataset list".
_NAMES = {"nightlogs": "night log", "telescopes": "telescope", "datasets": "dataset",
          "observations": "observation", "calibrations": "calibration",
          "datafiles": "data file", "organisations": "organisation"}


def walk(client, path: str, params: dict | None = None, *,
         max_pages: int = MAX_PAGES) -> list[dict]:
    """All entries of the list at `path` (client: arcsecond.client.Client).

    Raises MalformedAnswer for an answer that is not a list, an entry that is not an
    object or has no uuid, or a list going on past `max_pages` pages; PermanentError for
    a `next` link seen before (a loop); and the client's request() errors.
    """
    what = f"the server's {kind(path)} list"
    items: list[dict] = []
    data = client.request("GET", path, params=params)
    seen: set[str] = set()
    while True:
        if isinstance(data, list):
            page = data
        elif isinstance(data, dict) and isinstance(data.get("results"), list):
            page = data["results"]
        else:
            # A proxy page or a broken server, not this request's fault: try later.
            raise MalformedAnswer(f"GET {path}: the server's answer is not a list.")
        items.extend(entry(found, what, path) for found in page)
        link = data.get("next") if isinstance(data, dict) else None
        if not link:
            return items
        link = client.rebase(str(link))
        if link in seen:
            raise PermanentError(f"GET {path}: the server's pages never end "
                                 f"(page {len(seen) + 2} links back to an earlier one).")
        if len(seen) + 1 >= max_pages:
            raise MalformedAnswer(
                f"GET {path}: {what} goes on past {max_pages} pages ({len(items)} entries "
                f"so far); a lookup follows at most {max_pages} pages (a server problem: "
                "does it ignore the filter?).")
        seen.add(link)
        data = client.request("GET", link)


def entry(found, what: str, path: str, *, listed: bool = True) -> dict:
    """`found` if it is an object with a uuid. `what` names it for the message: "the
    server's telescope list" (an entry of it), or "the server's telescope" (the answer
    itself when not `listed`). Raises MalformedAnswer otherwise."""
    head = f"GET {path}: {what} has an entry" if listed else f"GET {path}: {what} is"
    if not isinstance(found, dict):
        raise MalformedAnswer(f"{head} {'that is ' if listed else ''}not an object "
                              f"({type(found).__name__}; a server problem).")
    uuid = found.get("uuid")
    if not uuid or isinstance(uuid, bool) or not isinstance(uuid, (str, int)):
        raise MalformedAnswer(f"{head} without uuid (a server problem).")
    return found


def kind(path: str) -> str:
    """The kind of objects a route holds, for messages: `/o/datasets/?x` -> "dataset"."""
    parts = [part for part in path.split("?")[0].split("/") if part]
    name = parts[-1] if parts else "object"
    if name not in _NAMES and len(parts) >= 2 and parts[-2] in _NAMES:
        name = parts[-2]  # a detail route: /telescopes/<uuid>/
    return _NAMES.get(name, name.rstrip("s"))
