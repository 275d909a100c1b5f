"""A ByteReader over HTTP range requests, so scanners read a remote file the
way they read a local one and only the bytes they ask for cross the network:
the zip directory and pickle members of a checkpoint, the header of a
safetensors or GGUF file. Reads are rounded to blocks and cached (bounded)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..errors import SourceError

BLOCK = 64 << 10
MAX_CACHED_BLOCKS = 1024  # 64 MiB


def _follow_redirects(client: Any) -> dict[str, bool]:
    """huggingface_hub 1.x hands out an httpx client, 0.x a requests session;
    they spell "follow redirects" differently (the Hub redirects LFS files)."""
    if type(client).__module__.split(".")[0] == "requests":
        return {"allow_redirects": True}
    return {"follow_redirects": True}


class HttpReader:
    def __init__(self, client: Any, url: str, size: int, headers: dict[str, str]) -> None:
        self._client = client
        self._url = url
        self._size = size
        self._headers = headers
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.bytes_fetched = 0

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if length <= 0 or offset >= self._size:
            return b""
        end = min(offset + length, self._size)
        first, last = offset // BLOCK, (end - 1) // BLOCK
        if last - first + 1 > MAX_CACHED_BLOCKS // 4:  # a big read: one exact request, not cached
            return self._get(offset, end)
        missing = [b for b in range(first, last + 1) if b not in self._blocks]
        if missing:
            self._fetch(missing[0], missing[-1])
        data = b"".join(self._block(b) for b in range(first, last + 1))
        start = offset - first * BLOCK
        return data[start : start + (end - offset)]

    def _block(self, index: int) -> bytes:
        block = self._blocks[index]
        self._blocks.move_to_end(index)
        return block

    def _fetch(self, first: int, last: int) -> None:
        """One request for the whole run of blocks, then cached block by block."""
        body = self._get(first * BLOCK, min((last + 1) * BLOCK, self._size))
        for index in range(first, last + 1):
            self._blocks[index] = body[(index - first) * BLOCK : (index - first + 1) * BLOCK]
            if len(self._blocks) > MAX_CACHED_BLOCKS:
                self._blocks.popitem(last=False)

    def _get(self, start: int, stop: int) -> bytes:
        headers = {**self._headers, "Range": f"bytes={start}-{stop - 1}", "Accept-Encoding": "identity"}
        try:
            response = self._client.get(self._url, headers=headers, **_follow_redirects(self._client))
        except Exception as exc:  # noqa: BLE001 - network errors of any kind end this file's scan
            raise SourceError(f"range request failed: {type(exc).__name__}") from None
        if response.status_code not in (200, 206):
            raise SourceError(f"range request answered HTTP {response.status_code}")
        body: bytes = response.content
        self.bytes_fetched += len(body)
        if response.status_code == 200:  # the server ignored Range: keep only what was asked
            body = body[start:stop]
        if len(body) != stop - start:
            raise SourceError(f"range request returned {len(body)} bytes, not {stop - start}")
        return body

    def close(self) -> None:
        self._blocks.clear()

    def __enter__(self) -> HttpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
