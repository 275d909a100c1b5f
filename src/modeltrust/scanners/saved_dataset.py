"""The metadata files of a `datasets.save_to_disk` folder, read as
`load_from_disk` reads them: `state.json` names the Arrow files to open
(`posixpath.join(folder, filename)`) and `dataset_dict.json` the split
folders (`posixpath.join(folder, split)`). A name that is absolute or climbs
out with `..` makes the loader open a file outside the dataset, one this scan
never saw. Parsed as bounded JSON; nothing is opened."""

from __future__ import annotations

from ..findings import Location
from ..reader import ByteReader, TooLarge, read_all
from . import jsontop
from .base import ScanContext

SCANNER = "saved-dataset"
STATE = "datasets-state"
DICT = "datasets-dict"
MAX_BYTES = 16 << 20


def escapes(path: str) -> bool:
    normalised = path.replace("\\", "/")
    return normalised.startswith("/") or path[1:2] == ":" or ".." in normalised.split("/") or "://" in path


class SavedDatasetScanner:
    name = SCANNER
    formats = (STATE, DICT)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            data = jsontop.loads(read_all(reader, MAX_BYTES), ("_data_files", "splits"))
        except (TooLarge, ValueError, RecursionError):
            return  # not this loader's JSON (the JSON scanner reports broken files)
        if not isinstance(data, dict):
            return
        if "_data_files" in data:
            for entry in data["_data_files"] if isinstance(data["_data_files"], list) else []:
                name = entry.get("filename") if isinstance(entry, dict) else None
                if isinstance(name, str) and escapes(name):
                    self._escape(ctx, location, "state.json `_data_files` names", name)
        if "splits" in data and isinstance(data["splits"], list):
            for split in data["splits"]:
                if isinstance(split, str) and (escapes(split) or "/" in split):
                    self._escape(ctx, location, "dataset_dict.json names the split folder", split)

    def _escape(self, ctx: ScanContext, location: Location, what: str, path: str) -> None:
        ctx.report(
            "dataset-path-escape",
            location,
            f"{what} {path!r}: load_from_disk opens it outside the dataset folder, unscanned",
            self.name,
            subject=path,
        )
