"""ChunkAssembler: any order, duplicates, wrong sizes, resume, hash check."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from agent.blobs import ChunkAssembler
from protocol.messages import ModelRef

CHUNK = 1024


def _ref(data: bytes) -> ModelRef:
    return ModelRef(hashlib.sha256(data).hexdigest(), len(data), "m.onnx", "onnx", CHUNK)


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


DATA = os.urandom(CHUNK * 5 + 300)  # 6 chunks, the last one short


def test_out_of_order_and_duplicate_chunks_assemble(tmp_path: Path) -> None:
    assembler = ChunkAssembler(tmp_path, _ref(DATA))
    chunks = list(enumerate(_chunks(DATA)))
    random.Random(1).shuffle(chunks)
    for index, chunk in chunks:
        assert assembler.add(index, chunk)
        assert not assembler.add(index, chunk)  # duplicate: ignored
    assert assembler.complete and assembler.missing() == []
    assert assembler.verify()
    assert assembler.part_path.read_bytes() == DATA


def test_wrong_size_and_out_of_range_chunks_are_ignored(tmp_path: Path) -> None:
    assembler = ChunkAssembler(tmp_path, _ref(DATA))
    chunks = _chunks(DATA)
    assert not assembler.add(0, chunks[0][:-1])
    assert not assembler.add(5, chunks[0])  # last chunk must be 300 bytes
    assert not assembler.add(6, chunks[0])
    assert not assembler.add(-1, chunks[0])
    assert assembler.received == 0 and assembler.missing() == [0, 1, 2, 3, 4, 5]


def test_missing_lists_what_did_not_arrive(tmp_path: Path) -> None:
    assembler = ChunkAssembler(tmp_path, _ref(DATA))
    for index, chunk in enumerate(_chunks(DATA)):
        if index not in (1, 4):
            assembler.add(index, chunk)
    assert assembler.missing() == [1, 4]
    assert not assembler.complete and not assembler.verify()


def test_download_resumes_from_persisted_state(tmp_path: Path) -> None:
    first = ChunkAssembler(tmp_path, _ref(DATA))
    chunks = _chunks(DATA)
    for index in (0, 2, 3):
        first.add(index, chunks[index])
    first.flush()  # what a reconnect / clean stop does
    second = ChunkAssembler(tmp_path, _ref(DATA))  # e.g. after an agent restart
    assert second.missing() == [1, 4, 5]
    for index in (1, 4, 5):
        second.add(index, chunks[index])
    assert second.verify()


def test_state_of_another_blob_layout_is_not_reused(tmp_path: Path) -> None:
    first = ChunkAssembler(tmp_path, _ref(DATA))
    first.add(0, _chunks(DATA)[0])
    first.flush()
    ref = _ref(DATA)
    other = ModelRef(ref.sha256, ref.size_bytes, "m.onnx", "onnx", 2048)
    assert ChunkAssembler(tmp_path, other).received == 0


def test_bad_hash_is_detected_and_discarded(tmp_path: Path) -> None:
    assembler = ChunkAssembler(tmp_path, _ref(DATA))
    tampered = bytearray(DATA)
    tampered[10] ^= 0xFF
    for index, chunk in enumerate(_chunks(bytes(tampered))):
        assembler.add(index, chunk)
    assert assembler.complete and not assembler.verify()
    assembler.discard()
    assert not assembler.part_path.exists() and not assembler.state_path.exists()


def test_partial_file_is_named_by_hash_only(tmp_path: Path) -> None:
    ref = ModelRef(hashlib.sha256(DATA).hexdigest(), len(DATA), "../../evil.onnx", "onnx", CHUNK)
    assembler = ChunkAssembler(tmp_path, ref)
    assembler.add(0, _chunks(DATA)[0])
    assert assembler.part_path.parent == tmp_path
    assert assembler.part_path.name == f"{ref.sha256}.part"


def test_received_bytes_count_the_short_last_chunk_exactly(tmp_path: Path) -> None:
    assembler = ChunkAssembler(tmp_path, _ref(DATA))
    chunks = _chunks(DATA)
    assembler.add(5, chunks[5])
    assert assembler.received_bytes == 300
    assembler.add(0, chunks[0])
    assert assembler.received_bytes == CHUNK + 300
    for index, chunk in enumerate(chunks):
        assembler.add(index, chunk)
    assert assembler.received_bytes == len(DATA)
