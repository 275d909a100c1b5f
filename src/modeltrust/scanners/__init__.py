"""The scanner registry: the one list that maps detected formats to scanners.

A file is scanned by the scanner of each format detect.detect() lists for it
(its bytes, its name, pickle-loadable); a format named only by a file name
and missing here is skipped (the sniffed format always has a scanner: the
unverified fallback).

Scanner modules are imported the first time their format is met, so a run
that only sees a torch checkpoint never pays for the GGUF, ONNX or Keras
code (start-up time is most of the cost of a header-only scan).
"""

from __future__ import annotations

import importlib

from .. import detect
from .base import ScanContext, Scanner
from .data import UnverifiedScanner

# format -> (module in this package, scanner class)
SCANNERS: dict[str, tuple[str, str]] = {
    "pickle": ("pickle_file", "PickleScanner"),
    "loadable-pickle": ("loadable", "LoadablePickleScanner"),
    "pytorch-legacy": ("pytorch", "LegacyTorchScanner"),
    "zip": ("archive", "ZipScanner"),
    "tar": ("archive", "TarScanner"),
    "numpy": ("numpy", "NumpyScanner"),
    **{fmt: ("compressed", "CompressedScanner") for fmt in detect.COMPRESSED},
    "safetensors": ("safetensors", "SafetensorsScanner"),
    "gguf": ("gguf", "GGUFScanner"),
    "onnx": ("onnx", "OnnxScanner"),
    "hdf5": ("keras", "Hdf5Scanner"),
    "tf-savedmodel": ("savedmodel", "SavedModelScanner"),
    "7z": ("sevenzip", "SevenZipScanner"),
    **{fmt: ("data", "PlainDataScanner") for fmt in detect.PLAIN_DATA},
    "python": ("code", "PythonScanner"),
    "pyc": ("code", "CompiledPythonScanner"),
    "chat-template": ("template", "TemplateScanner"),
    "hyperpyyaml": ("hyperpyyaml", "HyperPyYamlScanner"),
    "script": ("code", "ScriptScanner"),
    **{fmt: ("code", "ExecutableScanner") for fmt in detect.EXECUTABLE},
    "json": ("code", "JsonConfigScanner"),
    "parquet": ("parquet", "ParquetScanner"),
    "arrow": ("arrow", "ArrowFileScanner"),
    "arrow-stream": ("arrow", "ArrowStreamScanner"),
    "tflite": ("tflite", "TFLiteScanner"),
    "sentencepiece": ("sentencepiece", "SentencePieceScanner"),
    "msgpack": ("msgpack", "MsgpackScanner"),
    "ubjson": ("ubjson", "UbjsonScanner"),
    "tf-bundle-index": ("tfbundle", "TfBundleScanner"),
    "datasets-state": ("saved_dataset", "SavedDatasetScanner"),
    "datasets-dict": ("saved_dataset", "SavedDatasetScanner"),
}


class Registry:
    def __init__(self, scanners: tuple[Scanner, ...] = ()) -> None:
        """`scanners` overrides the built-in list for the formats they declare."""
        self._by_format: dict[str, Scanner] = {fmt: s for s in scanners for fmt in s.formats}
        self._loaded: dict[tuple[str, str], Scanner] = {}
        self.fallback = UnverifiedScanner()

    def for_format(self, fmt: str) -> Scanner | None:
        scanner = self._by_format.get(fmt)
        if scanner is not None:
            return scanner
        entry = SCANNERS.get(fmt)
        if entry is None:
            return None
        if entry not in self._loaded:
            module = importlib.import_module(f".{entry[0]}", __package__)
            self._loaded[entry] = getattr(module, entry[1])()
        return self._loaded[entry]


__all__ = ["SCANNERS", "Registry", "ScanContext", "Scanner"]
