"""The scanner registry: one place that maps detected formats to scanners."""

from __future__ import annotations

from .archive import TarScanner, ZipScanner
from .base import ScanContext, Scanner
from .code import ExecutableScanner, JsonConfigScanner, PythonScanner, ScriptScanner
from .compressed import CompressedScanner
from .data import PlainDataScanner, UnverifiedScanner
from .gguf import GGUFScanner
from .keras import Hdf5Scanner
from .numpy import NumpyScanner
from .onnx import OnnxScanner
from .pickle_file import PickleScanner
from .pytorch import LegacyTorchScanner
from .safetensors import SafetensorsScanner
from .savedmodel import SavedModelScanner
from .sevenzip import SevenZipScanner


def default_scanners() -> tuple[Scanner, ...]:
    return (
        PickleScanner(),
        LegacyTorchScanner(),
        ZipScanner(),
        TarScanner(),
        NumpyScanner(),
        CompressedScanner(),
        SafetensorsScanner(),
        GGUFScanner(),
        OnnxScanner(),
        Hdf5Scanner(),
        SavedModelScanner(),
        SevenZipScanner(),
        PlainDataScanner(),
        PythonScanner(),
        ScriptScanner(),
        ExecutableScanner(),
        JsonConfigScanner(),
    )


class Registry:
    def __init__(self, scanners: tuple[Scanner, ...] | None = None) -> None:
        self._by_format: dict[str, Scanner] = {}
        for scanner in scanners or default_scanners():
            for fmt in scanner.formats:
                self._by_format[fmt] = scanner
        self.fallback = UnverifiedScanner()

    def for_format(self, fmt: str) -> Scanner | None:
        return self._by_format.get(fmt)

    def formats(self) -> list[str]:
        return sorted(self._by_format)


__all__ = ["Registry", "ScanContext", "Scanner", "default_scanners"]
