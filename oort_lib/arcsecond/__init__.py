"""The server side: one HTTP client, and the two API generations behind one interface.

    address.py     which URLs may receive the key (https, loopback, the LAN when allowed)
    client.py      the HTTP session: deadlines, retries, Retry-After, pages, key hygiene
    failure.py     what an attempt came to, in the error tree (connection, timeout, refusal)
    deadline.py    the watchdog that ends a request at its total deadline or at a stop
    budget.py      the run's budget of requests throttled or left unanswered
    probe.py       whether an https:// URL whose TLS failed is a plain http server
    listing.py     lists of server objects: pages followed within a bound, entries checked
    detect.py      which generation a server speaks, without side effects
    remote.py      the small interface the run uses (container, exists, send, forget)
    generations.py the Remote of each generation: the one module that knows both
    gen2021.py     night log -> observation/calibration -> dataset, nested datafiles
    gen2026.py     key verification, datasets {name, telescope}, flat datafiles
    body.py        the streamed multipart body: only the file planned, its bytes checked
    answer.py      what an error answer says (its message, and whether it is a duplicate)
"""
