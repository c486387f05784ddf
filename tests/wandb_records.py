"""Reads the records of a W&B offline run file (``run-<id>.wandb``), so a test can check what the
real package wrote without a server: the file is a ``:W&B`` header (7 bytes) and then LevelDB's log
format, 32 KiB blocks of chunks (CRC32 4 bytes, length 2, type 1: full, first, middle, last), each
record a ``wandb_internal_pb2.Record``."""

import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file (header {data[:4]!r})")
    pos, pending = HEADER, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def logged_history(path: Path) -> list[dict[str, str]]:
    """Every ``run.log`` call's items (JSON-encoded values), in order."""
    return [
        {item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
        for r in wandb_records(path)
        if r.WhichOneof("record_type") == "history"
    ]


def logged_config(path: Path) -> dict[str, str]:
    out = {}
    for r in wandb_records(path):
        if r.WhichOneof("record_type") == "run":
            out.update({item.key: item.value_json for item in r.run.config.update})
        elif r.WhichOneof("record_type") == "config":
            out.update({item.key: item.value_json for item in r.config.update})
    return out
