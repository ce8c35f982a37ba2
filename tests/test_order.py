"""The order of a backlog (issue 24, part 3): the newest night first by default, the
oldest first with `upload_order = oldest`; within a night by kind, dataset and path, so
remote containers are made once and a 2026 dataset is filed under its earliest night.

The pure ordering (run/ordering.py) by its properties, and the run's queue read from
the manifest (run/queue.py) in exactly that order; the setting as config.ini holds it;
then real runs against the sandbox of each generation, whose datafiles are numbered in
the order they arrived (one worker: that order is the upload order)."""

from __future__ import annotations

import pytest
from fitsfiles import write_tree
from helpers import configure_for, manifest_row
from hypothesis import given, settings
from hypothesis import strategies as st

from oort_lib.errors import ConfigError
from oort_lib.run.item import Item
from oort_lib.run.ordering import NEWEST, OLDEST, upload_order
from oort_lib.run.queue import Queue, Scratch
from oort_lib.state import config as cfg

# --- the ordering, pure ------------------------------------------------------------------

FOLDERS = (cfg.Folder("/data/a"), cfg.Folder("/data/b", organisation="obs", telescope="t1"),
           cfg.Folder("/data/c", telescope="t2"))
NIGHTS = ("2021-06-01", "2021-06-02", "2024-12-31", "2025-01-01", "")  # "": no night


def item(folder: cfg.Folder, relpath: str, night: str, kind: str, dataset: str) -> Item:
    return Item(folder=folder, full_path=None, relpath=relpath, size=1, mtime_ns=0,
                hash=None, header_date=night, night=night, kind=kind, dataset=dataset,
                target="")


items_strategy = st.lists(st.builds(
    item,
    folder=st.sampled_from(FOLDERS),
    relpath=st.sampled_from(("a.fits", "M31/b.fits", "Flats/c.fits", "z.fits")),
    night=st.sampled_from(NIGHTS),
    kind=st.sampled_from(("observation", "calibration")),
    dataset=st.sampled_from(("M31", "Flats", "M42")),
), max_size=40)


def rank(night: str, order: str) -> tuple:
    """An independent statement of the wanted order of nights: dated first, undated last."""
    if not night:
        return (1, 0)
    days = int(night.replace("-", ""))
    return (0, -days if order == NEWEST else days)


@pytest.mark.parametrize("order", [NEWEST, OLDEST])
@given(items=items_strategy)
def test_nights_in_order_undated_last_nothing_lost(order, items):
    ordered = upload_order(items, order)
    assert sorted(map(id, ordered)) == sorted(map(id, items))  # a permutation
    ranks = [rank(i.night, order) for i in ordered]
    assert ranks == sorted(ranks)


@pytest.mark.parametrize("order", [NEWEST, OLDEST])
@given(items=items_strategy)
def test_within_a_night_by_kind_dataset_path_and_folder(order, items):
    ordered = upload_order(items, order)
    for night in set(NIGHTS):
        got = [(i.kind, i.dataset, i.relpath, i.folder.path) for i in ordered
               if i.night == night]
        assert got == sorted(got)  # calibrations first, each dataset's files together


@given(items=items_strategy)
def test_oldest_on_one_telescope_is_the_order_of_earlier_runs(items):
    one = [i._replace(folder=FOLDERS[0]) for i in items if i.night]
    assert upload_order(one, OLDEST) == sorted(one, key=lambda i: (i.group, i.relpath))


@given(items=items_strategy)
def test_one_night_is_the_same_in_either_order(items):
    night = [i._replace(night="2021-06-01") for i in items]
    assert [id(i) for i in upload_order(night, NEWEST)] == \
        [id(i) for i in upload_order(night, OLDEST)]


@settings(max_examples=25, deadline=None)
@given(items=items_strategy, batch=st.integers(1, 5))
def test_the_queue_is_read_in_the_order_stated(items, batch):
    """A run reads its queue from the manifest a page at a time (pages of `batch`): the
    order it gets is upload_order's, for either setting, whatever the page size."""
    unique = list({(i.folder.path, i.relpath): i for i in items}.values())
    with Scratch() as scratch:
        queue = Queue(scratch.manifest, batch=batch)
        for folder in FOLDERS:
            queue.watch(folder)
        for one in unique:
            queue.add(one)
        queue.flush()
        for order in (NEWEST, OLDEST):
            assert list(queue.items(order)) == upload_order(unique, order)
        # Left out: the files a conflict made wait.
        skip = {(i.folder.path, i.relpath) for i in unique[::2]}
        assert list(queue.items(NEWEST, skip)) == [
            i for i in upload_order(unique, NEWEST) if (i.folder.path, i.relpath) not in skip]


def test_a_night_of_several_telescopes_is_one_block():
    """Nights first, across organisations and telescopes (a telescope's old nights do
    not go before another's last night); within the night, by dataset, path, folder."""
    a = item(FOLDERS[1], "M31/x.fits", "2021-06-02", "observation", "M31")  # obs, t1
    b = item(FOLDERS[0], "M31/y.fits", "2021-06-01", "observation", "M31")  # personal
    c = item(FOLDERS[2], "M31/x.fits", "2021-06-02", "observation", "M31")  # personal, t2
    assert upload_order([a, b, c]) == [a, c, b]
    assert upload_order([c, b, a], OLDEST) == [b, a, c]


def test_an_unknown_order_is_a_callers_bug():
    with pytest.raises(ValueError, match="sideways"):
        upload_order([], "sideways")


# --- the setting -------------------------------------------------------------------------


def write_config(paths: cfg.Paths, main: str) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(f"[oort-sync]\napi = https://api.arcsecond.io\n{main}\n",
                                 encoding="utf-8")


def test_newest_by_default_oldest_when_said_any_case(home):
    write_config(home, "")
    assert cfg.load_settings(home).upload_order == NEWEST
    write_config(home, "upload_order = Oldest")
    assert cfg.load_settings(home).upload_order == OLDEST
    write_config(home, "upload_order = newest")
    assert cfg.load_settings(home).upload_order == NEWEST


def test_another_order_is_named_with_its_line(home):
    write_config(home, "upload_order = random")
    with pytest.raises(ConfigError) as caught:
        cfg.load_settings(home)
    message = str(caught.value)
    assert "upload_order" in message and "line 3" in message and "newest" in message


def test_the_order_is_written_only_when_not_the_default(home):
    cfg.save_settings(home, cfg.Settings())
    assert "upload_order" not in home.config_file.read_text(encoding="utf-8")
    cfg.save_settings(home, cfg.Settings(upload_order=OLDEST))
    assert "upload_order = oldest" in home.config_file.read_text(encoding="utf-8")
    assert cfg.load_settings(home).upload_order == OLDEST


# --- real runs against the sandbox --------------------------------------------------------

# Three nights months apart (A < B < C), whatever zone dates them. M31 has frames of A
# and C: one dataset per night in 2021; in 2026 one dataset, filed whole under A.
ARCHIVE = {
    "M31/m31_a1.fits": "2021-03-10T22:00:00",
    "M31/m31_a2.fits": "2021-03-10T23:00:00",
    "M31/m31_c1.fits": "2021-09-20T22:00:00",
    "M42/m42_b1.fits": "2021-06-15T22:00:00",
    "Flats/flat_b1.fits": "2021-06-15T21:00:00",
    "NGC7000/ngc_c1.fits": "2021-09-20T23:00:00",
}
# The upload order (basenames): by night, then calibrations before observations, then
# dataset, then path.
EXPECTED = {
    ("2021", NEWEST): ["m31_c1", "ngc_c1", "flat_b1", "m42_b1", "m31_a1", "m31_a2"],
    ("2021", OLDEST): ["m31_a1", "m31_a2", "flat_b1", "m42_b1", "m31_c1", "ngc_c1"],
    ("2026", NEWEST): ["ngc_c1", "flat_b1", "m42_b1", "m31_a1", "m31_a2", "m31_c1"],
    ("2026", OLDEST): ["m31_a1", "m31_a2", "m31_c1", "flat_b1", "m42_b1", "ngc_c1"],
}


def filed(sandbox) -> dict[str, tuple[str, str]]:
    """basename -> (dataset name, night log date) of each datafile as the server filed it."""
    logs = {n["uuid"]: n["date"] for n in sandbox.objects("nightlogs")}
    parents = {p["uuid"]: p["night_log"] for kind in ("observations", "calibrations")
               for p in sandbox.objects(kind)}
    datasets = {d["uuid"]: (d["name"], logs[parents[d["observation"] or d["calibration"]]])
                for d in sandbox.objects("datasets")}
    return {f["filename"].removesuffix(".fits"): datasets[f["dataset"]]
            for f in sandbox.datafiles()}


@pytest.mark.parametrize("order", [None, OLDEST])  # None: the default, not written
def test_a_backlog_goes_newest_night_first_unless_oldest(cli, home, server, tmp_path, order):
    generation = server.dialect
    root = tmp_path / "archive"
    write_tree(root, {path: {"DATE-OBS": when, "OBJECT": path.partition("/")[0]}
                      for path, when in ARCHIVE.items()}, shape=(8, 8))
    configure_for(home, server, generation, root,
                  **({"upload_order": order} if order else {}))
    written = home.config_file.read_text(encoding="utf-8")
    assert ("upload_order = oldest" in written) == (order == OLDEST)

    result = cli("run", "--min-age=0", "--jobs=1")  # one worker: arrival order is the order
    assert result.code == 0, result.err

    arrived = [f["filename"].removesuffix(".fits") for f in server.datafiles()]
    assert arrived == EXPECTED[(generation, order or NEWEST)]
    # Each file filed once, under the night the client planned (2021: the night log it
    # made; 2026: the night the server files the dataset under, M31's earliest).
    nights = {name: manifest_row(home, f"{name}.fits")["night"] for name in arrived}
    assert filed(server) == {name: (manifest_row(home, f"{name}.fits")["dataset"],
                                    nights[name]) for name in arrived}
    assert len(set(nights.values())) == 3
    if generation == "2026":
        assert nights["m31_c1"] == nights["m31_a1"] < nights["m42_b1"] < nights["ngc_c1"]
    # Containers made once: one night log per night, one dataset per (night, name).
    assert len(server.objects("nightlogs")) == 3
    datasets = [(d["name"], d["observation"] or d["calibration"])
                for d in server.objects("datasets")]
    assert len(datasets) == len(set(datasets)) == (5 if generation == "2021" else 4)
