"""fitscards reads a header's values as astropy's Header does, or says it is unsure.

The getter the FITS reader uses (fitsfile._cards_get: fitscards, astropy for what it
leaves) is held to astropy alone (fitsfile._astropy_get on Header.fromstring) over
generated headers full of the conventions and mistakes real writers make, and over the
real files; and the plain headers capture programs write are read without astropy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oort_lib.local import fitsfile
from oort_lib.local.fitscards import Cards, Unsure
from oort_lib.local.fitsfile import (
    BLOCK,
    _astropy_get,
    _cards_get,
    _fits_header_class,
    open_fits,
    read_header_bytes,
)
from oort_lib.local.headerdate import text_value
from oort_lib.local.headers import DATE_KEYWORDS, FRAME_KEYWORDS, TIME_KEYWORDS

QUERIED = (*DATE_KEYWORDS, *TIME_KEYWORDS, *FRAME_KEYWORDS, "OBJECT", "TIMESYS", "DATE-LOC",
           "SITELONG", "OBSGEO-L", "LONG-OBS", "OBSGEO-X", "OBSGEO-Y", "EXPTIME", "EXPOSURE",
           "FILTER")
SIMPLE = "SIMPLE  =                    T"


def header(*cards: str) -> bytes:
    text = "".join(c.ljust(80)[:80] for c in (SIMPLE, *cards, "END"))
    return text.ljust(-(-len(text) // BLOCK) * BLOCK).encode("ascii")


def by_astropy(raw: bytes, keyword: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = _fits_header_class().fromstring(raw)
        return _astropy_get(parsed, raw, keyword, text_value)


def by_reader(raw: bytes, keyword: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _cards_get(raw, text_value)(keyword)


def sure(raw: bytes, keyword: str):
    return Cards(raw).value(keyword)


# --- what fitscards reads itself -----------------------------------------------------------


@pytest.mark.parametrize("card, value", [
    ("OBJECT  = 'M 31    '           / target", "M 31"),
    ("OBJECT  = '  lead'", "  lead"),
    ("OBJECT  = ''", ""),
    ("OBJECT  = 'a/b' / c'omment'", "a/b"),
    ("object  = 'lower case keyword'", "lower case keyword"),
    (" OBJECT = 'shifted keyword'", "shifted keyword"),
    ("EXPTIME =                  300", 300),
    ("EXPTIME = 0300", 300),
    ("EXPTIME = -0", 0),
    ("EXPTIME = +3.E2 / s", 300.0),
    ("EXPTIME = 1.5D3", 1500.0),
    ("EXPTIME = 1.5d3", 1500.0),
    ("EXPTIME = .5", 0.5),
    ("EXPTIME = 1E400", float("inf")),
    ("EXPTIME = T", True),
    ("EXPTIME = F / no", False),
    ("EXPTIME =    / nothing", None),
    ("EXPTIME =", None),
])
def test_the_plain_forms_are_read_without_astropy(card, value):
    raw = header(card)
    keyword = "OBJECT" if "OBJECT" in card.upper() else "EXPTIME"
    assert sure(raw, keyword) == value
    assert by_reader(raw, keyword) == by_astropy(raw, keyword)


def test_the_first_of_two_cards_answers_and_a_missing_keyword_is_none():
    raw = header("OBJECT  = 'A'", "OBJECT  = 'B'")
    assert sure(raw, "OBJECT") == "A" and sure(raw, "FILTER") is None
    assert by_astropy(raw, "OBJECT") == "A"


def test_cards_after_the_end_card_are_not_read():
    raw = header("FILTER  = 'R'").replace(b"END" + b" " * 77, b"END" + b" " * 77
                                            + b"OBJECT  = 'after'".ljust(80), 1)[:BLOCK]
    assert sure(raw, "OBJECT") is None
    assert by_astropy(raw, "OBJECT") is None


@pytest.mark.parametrize("cards, keyword", [
    (["HIERARCH OBJECT = 'h'", "OBJECT  = 'plain'"], "OBJECT"),  # astropy: the first, 'h'
    (["OBJECT  = 'abc&'", "CONTINUE  'def'"], "OBJECT"),  # one long string
    (["OBJECT  = 'NGC: 7000'"], "OBJECT"),  # a record-valued card: astropy says 7000
    (["OBJECT  = 'O''Brien'"], "OBJECT"),  # a quote inside
    (["OBJECT    'no indicator'"], "OBJECT"),
    (["OBJ= 'displaced'"], "OBJ"),
    (["EXPTIME = 1 000"], "EXPTIME"),
    (["EXPTIME = (1.0, 2.0)"], "EXPTIME"),
    (["DATE-OBS= 2021-03-04T21:15:03"], "DATE-OBS"),  # unquoted: astropy refuses it
])
def test_the_other_forms_are_left_to_astropy(cards, keyword):
    raw = header(*cards)
    with pytest.raises(Unsure):
        sure(raw, keyword)
    assert by_reader(raw, keyword) == by_astropy(raw, keyword)


# --- held to astropy over generated headers ------------------------------------------------

_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24)
_keywords = st.one_of(
    st.sampled_from(QUERIED),
    st.sampled_from(QUERIED).map(str.lower),
    st.sampled_from(QUERIED).map(lambda k: " " + k),
    st.sampled_from(("HIERARCH", "CONTINUE", "COMMENT", "HISTORY", "", "END", "NAXIS")),
    st.sampled_from(QUERIED).map(lambda k: "HIERARCH " + k),
    _text.map(lambda t: t[:8]),
)
_separators = st.sampled_from(("= ", "= ", "= ", "=", " = ", " ", "  "))
_digits = st.from_regex(r"\A[+-]? ?0*[0-9]{0,6}(\.[0-9]{0,6})?( ?[eEdD] ?[+-]?[0-9]{1,3})?\Z")
_values = st.one_of(
    _text.map(lambda t: f"'{t}'"),
    _text.map(lambda t: f"'{t}&'"),
    st.sampled_from(("'NGC: 7000'", "'AXIS.1: 2'", "'x: 1.5'", "'O''Brien'", "''", "'a''/b'",
                     "'unterminated", "T", "F", "t", "(1.0, 2.0)", "(1,2", "nan", "inf",
                     "0x10", "1_000", "2021-03-04T21:15:03", "")),
    _digits,
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=False).map(repr),
    _text,
)
_comments = st.one_of(st.just(""), _text.map(lambda t: " /" + t), _text.map(lambda t: " " + t))
_cards = st.builds(lambda k, s, v, c, pad: (k.ljust(8) if len(k) < 8 and pad else k)
                   + s + v + c, _keywords, _separators, _values, _comments, st.booleans())


@settings(max_examples=int(os.environ.get("FITSCARDS_EXAMPLES", 1500)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(_cards, max_size=12), st.sampled_from(QUERIED))
@example(["OBJECT  = 'a''/b'"], "OBJECT")
@example(["HIERARCH HIERARCH OBJECT = 'x'", "OBJECT  = 'y'"], "OBJECT")
@example(["DATE-OBS= '2021-01-01'", "CONTINUE  'x'"], "DATE-OBS")
@example(["JD = '&'"], "JD")
def test_the_reader_answers_as_astropy_does(cards, keyword):
    raw = header(*cards)
    assert by_reader(raw, keyword) == by_astropy(raw, keyword)


def _headers(path: str):
    stream, _compressed = open_fits(path)
    with stream:
        for index in range(10):
            raw = read_header_bytes(stream, first=index == 0)
            if raw is None:
                return
            yield raw.translate(fitsfile._PRINTABLE)
            stream.seek(fitsfile.layout(raw).padded, os.SEEK_CUR)


def _real_fits(realdata):
    return sorted(str(p) for p in realdata.rglob("*")
                  if p.is_file() and ".fit" in p.name.lower() and p.suffix != ".zip")


def test_the_real_files_read_as_astropy_reads_them(realdata):
    files = _real_fits(realdata)
    assert len(files) >= 8
    compared = 0
    for path in files:
        try:
            headers = list(_headers(path))
        except (ValueError, OSError, EOFError):
            continue  # damaged on purpose (noheader.fits): the reader's tests cover it
        for raw in headers:
            for keyword in QUERIED:
                assert by_reader(raw, keyword) == by_astropy(raw, keyword), (path, keyword)
                compared += 1
    assert compared > 100


def test_a_run_over_plain_headers_never_imports_astropy(realdata, tmp_path):
    """Each real file, and the frames capture programs write (sample_tree), is read in a
    fresh process: astropy is not imported (it costs half a second per run)."""
    from oort_lib.samples import write_fits

    for index, (key, value) in enumerate([("OBJECT", "M 31"), ("EXPTIME", 300.0),
                                          ("IMAGETYP", "Light Frame")]):
        write_fits(tmp_path / f"s{index}.fits", {"DATE-OBS": "2024-07-30T22:44:36.5",
                                                 key: value, "FILTER": "Ha"})
    files = [*_real_fits(realdata), *map(str, sorted(tmp_path.iterdir()))]
    script = ("import sys\nfrom oort_lib.local.headers import read_header\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n        read_header(path)\n"
              "    except Exception as exc:\n        print(path, exc)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'astropy'))\n")
    done = subprocess.run([sys.executable, "-c", script, *files], capture_output=True,
                          text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
