"""The result document (DESIGN.md "Result document"): its schema, the samples
codec, and one typed reader that every consumer uses.

The profiler writes result documents (``profiler.result.build_result``); the
agent sends them; hostctl stores, compares and renders them. Everything that
*reads* one goes through :func:`read_result`, which turns the JSON into frozen,
typed sections. The reader is tolerant where a display must go on (a field of
the wrong type reads as None, never as an exception) and strict where it must
be: a document that is not a result at all, or of a newer schema than this
code knows, raises :class:`ResultError` with one line.

Schema history (readers accept every version listed in :data:`READABLE_VERSIONS`):
  edgeprof.result/1 — first version. Optional keys added since, still version 1
      (null or absent when not measured): ``model.variant``, ``model.macs_complete``,
      ``settings.input_shapes``, ``energy``, ``timeline``, ``per_op``,
      ``accuracy_error``, ``memory_mb.peak_rss_with_eval``, ``accuracy.correct``
      (per-sample correctness, :func:`encode_correct`), ``accuracy.data_sha256`` and
      ``model.gzip_bytes`` (the size of the file gzipped; like ``model.variant``
      written by the host that sent the file, never by a device).

Standard library only (protocol imports nothing of ours but its own modules).
"""

from __future__ import annotations

import array
import base64
import binascii
import math
import re
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import ProtocolError

SCHEMA_FAMILY = "edgeprof.result"
SCHEMA_VERSION = 1
RESULT_SCHEMA = f"{SCHEMA_FAMILY}/{SCHEMA_VERSION}"
"""The ``schema`` value of every result document this code writes."""
READABLE_VERSIONS = (1,)

SAMPLES_ENCODING = "zlib+base64:int64-le"
MAX_DECODED_SAMPLES = 2_000_000
"""A samples document never decodes to more than this many values (a result
carries at most 20 000; the bound stops a hostile zlib bomb)."""


class ResultError(ProtocolError):
    """A document that is not a readable edgeprof result."""


# -- samples codec ---------------------------------------------------------------------


def encode_samples(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Pack integer nanosecond samples into a compact, JSON-safe, lossless document.

    ``{"unit": "ns", "encoding": "zlib+base64:int64-le", "n": N, "data": "..."}``;
    ``data`` is base64 of zlib-compressed little-endian signed 64-bit integers,
    in the order measured (order matters for drift analysis).
    """
    values = array.array("q", (int(s) for s in samples_ns))
    if sys.byteorder != "little":
        values.byteswap()
    # Level 6: level 9 is ~15x slower on 10^5 samples for ~4% smaller output.
    data = base64.b64encode(zlib.compress(values.tobytes(), 6)).decode("ascii")
    return {"unit": "ns", "encoding": SAMPLES_ENCODING, "n": len(values), "data": data}


def decode_samples(doc: Mapping[str, Any]) -> list[int]:
    """Inverse of :func:`encode_samples`. Raises ValueError on a malformed document.

    ``doc`` is a samples document (``result["samples"]``) or a whole result
    document, whose ``samples`` is then used (ValueError when it has none,
    e.g. an error result or one profiled without keeping samples).
    """
    if "encoding" not in doc and "schema" in doc:
        inner = doc.get("samples")
        if not isinstance(inner, Mapping):
            raise ValueError("this result document has no samples (error or samples not kept)")
        doc = inner
    if doc.get("encoding") != SAMPLES_ENCODING or doc.get("unit") != "ns":
        raise ValueError(
            f"unsupported samples encoding {doc.get('encoding')!r} / unit {doc.get('unit')!r}"
        )
    try:
        packed = base64.b64decode(str(doc["data"]), validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, 8 * MAX_DECODED_SAMPLES)
    except (KeyError, ValueError, binascii.Error, zlib.error) as exc:
        raise ValueError(f"corrupt samples document: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"samples document holds more than {MAX_DECODED_SAMPLES} values")
    if len(raw) % 8:
        raise ValueError("corrupt samples document: length is not a multiple of 8 bytes")
    values = array.array("q")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    if doc.get("n") is not None and doc["n"] != len(values):
        raise ValueError(f"corrupt samples document: n={doc['n']} but {len(values)} values")
    return values.tolist()


CORRECT_ENCODING = "bits-lsb+base64"
"""Encoding tag of :func:`encode_correct` documents."""


def encode_correct(flags: Sequence[bool]) -> dict[str, Any]:
    """Pack per-sample correctness into ``{"encoding", "n", "data"}``.

    Bit ``i % 8`` (least significant first) of byte ``i // 8`` is 1 when sample
    i (in the order of the data file) was classified correctly; ``data`` is the
    bytes in base64. 10 000 samples take 1 668 characters.
    """
    packed = bytearray((len(flags) + 7) // 8)
    for i, ok in enumerate(flags):
        if ok:
            packed[i >> 3] |= 1 << (i & 7)
    return {
        "encoding": CORRECT_ENCODING,
        "n": len(flags),
        "data": base64.b64encode(bytes(packed)).decode("ascii"),
    }


def decode_correct(doc: Mapping[str, Any]) -> list[bool]:
    """Inverse of :func:`encode_correct`; ValueError on a malformed document."""
    if doc.get("encoding") != CORRECT_ENCODING:
        raise ValueError(f"unsupported correctness encoding {doc.get('encoding')!r}")
    n = doc.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"correctness n must be a non-negative integer, not {n!r}")
    if n > MAX_DECODED_SAMPLES:
        raise ValueError(f"correctness document holds more than {MAX_DECODED_SAMPLES} samples")
    try:
        packed = base64.b64decode(str(doc.get("data", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"corrupt correctness data: {exc}") from None
    if len(packed) != (n + 7) // 8:
        raise ValueError(f"corrupt correctness data: {len(packed)} bytes for n={n}")
    return [bool(packed[i >> 3] >> (i & 7) & 1) for i in range(n)]


# -- tolerant field readers ------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    """A finite number (bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    return None


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _str(value: Any) -> str | None:
    """A non-empty string, with what no console, XML file or UTF-8 encoder can take
    (control characters, lone surrogates) replaced by U+FFFD: names come from
    devices and files nobody here wrote."""
    if not isinstance(value, str) or not value:
        return None
    return _UNPRINTABLE.sub("\ufffd", value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(
        _UNPRINTABLE.sub("\ufffd", str(v))
        for v in value
        if isinstance(v, (str, int, float)) and str(v)
    )


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[lo, hi]`` (a 95 % confidence interval)."""

    lo: float
    hi: float

    @classmethod
    def read(cls, value: Any) -> Interval | None:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return None
        lo, hi = _num(value[0]), _num(value[1])
        return None if lo is None or hi is None or lo > hi else cls(lo, hi)


def _shape(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, (list, tuple)):
        return None
    dims = tuple(_int(d) for d in value)
    return None if any(d is None for d in dims) else dims  # type: ignore[return-value]


# -- sections --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSection:
    """``device{...}``: where the result was measured."""

    id: str | None = None
    hostname: str | None = None
    machine: str | None = None
    arch: str | None = None
    cpu: str | None = None
    cores: int | None = None
    ram_mb: float | None = None
    os: str | None = None
    tags: tuple[str, ...] = ()
    board: str | None = None

    @classmethod
    def read(cls, value: Any) -> DeviceSection:
        d = _map(value)
        return cls(
            id=_str(d.get("id")),
            hostname=_str(d.get("hostname")),
            machine=_str(d.get("machine")),
            arch=_str(d.get("arch")),
            cpu=_str(d.get("cpu")),
            cores=_int(d.get("cores")),
            ram_mb=_num(d.get("ram_mb")),
            os=_str(d.get("os")),
            tags=_strs(d.get("tags")),
            board=_str(_map(d.get("board")).get("model")) or _str(d.get("board")),
        )


@dataclass(frozen=True)
class VariantSection:
    """``model.variant{kind, recipe, source_sha256}``: how a compressed variant was made."""

    kind: str | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict)
    source_sha256: str | None = None

    @classmethod
    def read(cls, value: Any) -> VariantSection | None:
        if not isinstance(value, Mapping):
            return None
        return cls(
            kind=_str(value.get("kind")),
            recipe=dict(_map(value.get("recipe"))),
            source_sha256=_str(value.get("source_sha256")),
        )


@dataclass(frozen=True)
class ModelSection:
    """``model{...}``: the file that ran and what static analysis says of it."""

    name: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    format: str | None = None
    params: int | None = None
    macs: int | None = None
    macs_complete: bool | None = None
    """False: ``macs`` is what could be counted, a lower bound."""
    sparsity: float | None = None
    variant: VariantSection | None = None
    notes: tuple[str, ...] = ()
    gzip_bytes: int | None = None
    """Size of the file gzipped (``gzip -6``): what pruned zeros save on the wire."""

    @classmethod
    def read(cls, value: Any) -> ModelSection:
        m = _map(value)
        return cls(
            name=_str(m.get("name")),
            sha256=_str(m.get("sha256")),
            size_bytes=_int(m.get("size_bytes")),
            format=_str(m.get("format")),
            params=_int(m.get("params")),
            macs=_int(m.get("macs")),
            macs_complete=_bool(m.get("macs_complete")),
            sparsity=_num(m.get("sparsity")),
            variant=VariantSection.read(m.get("variant")),
            notes=_strs(m.get("notes")),
            gzip_bytes=_int(m.get("gzip_bytes")),
        )

    @property
    def stem(self) -> str | None:
        """The name without its extension (``mobilenet_int8`` of ``mobilenet_int8.tflite``)."""
        if self.name is None:
            return None
        head, dot, ext = self.name.rpartition(".")
        return head if dot and head and ext.lower() in ("tflite", "lite", "onnx") else self.name


@dataclass(frozen=True)
class RuntimeSection:
    """``runtime{name, version, delegate_or_provider, threads}``."""

    name: str | None = None
    version: str | None = None
    delegate_or_provider: str | None = None
    threads: int | None = None

    @classmethod
    def read(cls, value: Any) -> RuntimeSection:
        r = _map(value)
        return cls(
            name=_str(r.get("name")),
            version=_str(r.get("version")),
            delegate_or_provider=_str(r.get("delegate_or_provider")),
            threads=_int(r.get("threads")),
        )


@dataclass(frozen=True)
class SettingsSection:
    """``settings{...}``: how the model was measured."""

    runs: int | None = None
    warmup: int | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    threads: int | None = None
    runtime: str | None = None
    provider: str | None = None
    xnnpack: bool | None = None
    seed: int | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """The shape every input had when it ran, by input name (empty: unknown)."""
    inputs_source: str | None = None
    """'generated' or 'file'."""
    eval: str | None = None
    """Name of the labelled data file top-1 was measured on."""

    @classmethod
    def read(cls, value: Any) -> SettingsSection:
        s = _map(value)
        shapes: dict[str, tuple[int, ...]] = {}
        for name, dims in _map(s.get("input_shapes")).items():
            shape = _shape(dims)
            if isinstance(name, str) and shape is not None:
                shapes[name] = shape
        return cls(
            runs=_int(s.get("runs")),
            warmup=_int(s.get("warmup")),
            min_seconds=_num(s.get("min_seconds")),
            max_seconds=_num(s.get("max_seconds")),
            threads=_int(s.get("threads")),
            runtime=_str(s.get("runtime")),
            provider=_str(s.get("provider")),
            xnnpack=_bool(s.get("xnnpack")),
            seed=_int(s.get("seed")),
            input_shapes=shapes,
            inputs_source=_str(_map(s.get("inputs")).get("source")),
            eval=_str(s.get("eval")),
        )


@dataclass(frozen=True)
class LatencySection:
    """``latency_ms{...}``: steady-state statistics in milliseconds (None: withheld)."""

    n: int | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    cov: float | None = None
    ci95_p50: Interval | None = None
    ci95_p90: Interval | None = None
    drift: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any) -> LatencySection | None:
        if not isinstance(value, Mapping):
            return None
        return cls(
            n=_int(value.get("n")),
            min=_num(value.get("min")),
            p50=_num(value.get("p50")),
            p90=_num(value.get("p90")),
            p95=_num(value.get("p95")),
            p99=_num(value.get("p99")),
            max=_num(value.get("max")),
            mean=_num(value.get("mean")),
            std=_num(value.get("std")),
            cov=_num(value.get("cov")),
            ci95_p50=Interval.read(value.get("ci95_p50")),
            ci95_p90=Interval.read(value.get("ci95_p90")),
            drift=dict(_map(value.get("drift"))),
        )


@dataclass(frozen=True)
class MemorySection:
    """``memory_mb{...}`` in MiB."""

    peak_rss: float | None = None
    rss_after_load: float | None = None
    load_delta: float | None = None
    peak_rss_with_eval: float | None = None
    peak_rss_source: str | None = None

    @classmethod
    def read(cls, value: Any) -> MemorySection:
        m = _map(value)
        return cls(
            peak_rss=_num(m.get("peak_rss")),
            rss_after_load=_num(m.get("rss_after_load")),
            load_delta=_num(m.get("load_delta")),
            peak_rss_with_eval=_num(m.get("peak_rss_with_eval")),
            peak_rss_source=_str(m.get("peak_rss_source")),
        )


@dataclass(frozen=True)
class AccuracySection:
    """``accuracy{top1, n, ...}``: top-1 on a labelled data set, measured on the device."""

    top1: float | None = None
    n: int | None = None
    data_sha256: str | None = None
    """SHA-256 of the data file evaluated on: equal on two results = the same data."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole section (per-sample correctness and the like)."""

    @classmethod
    def read(cls, value: Any) -> AccuracySection | None:
        if not isinstance(value, Mapping):
            return None
        top1 = _num(value.get("top1"))
        return cls(
            top1=top1 if top1 is not None and 0.0 <= top1 <= 1.0 else None,
            n=_int(value.get("n")),
            data_sha256=_str(value.get("data_sha256")),
            raw=dict(value),
        )

    def correct(self) -> list[bool] | None:
        """Per-sample correctness (``accuracy.correct``), or None when the result has
        none, it cannot be decoded, or it does not cover the n samples."""
        doc = self.raw.get("correct")
        if not isinstance(doc, Mapping):
            return None
        try:
            flags = decode_correct(doc)
        except ValueError:
            return None
        return flags if len(flags) == self.n else None


@dataclass(frozen=True)
class ErrorSection:
    """``error{code, message}`` of an error result (or ``accuracy_error``)."""

    code: str
    message: str

    @classmethod
    def read(cls, value: Any) -> ErrorSection | None:
        if isinstance(value, str) and value:  # a device that sent "error": "boom"
            return cls("error", value)
        if not isinstance(value, Mapping):
            return None
        code = _str(value.get("code"))
        message = _str(value.get("message"))
        if code is None and message is None:
            return None
        return cls(code or "error", message or "")


@dataclass(frozen=True)
class EnvSection:
    """``env{...}``: the device's thermal state around the run."""

    temp_c_start: float | None = None
    temp_c_end: float | None = None
    throttled: bool | None = None
    cpu_freq_mhz: float | None = None
    governor: str | None = None
    load_avg: tuple[float, ...] = ()

    @classmethod
    def read(cls, value: Any) -> EnvSection:
        e = _map(value)
        load = e.get("load_avg")
        loads = (
            tuple(x for x in (_num(v) for v in load) if x is not None)
            if isinstance(load, (list, tuple))
            else ()
        )
        return cls(
            temp_c_start=_num(e.get("temp_c_start")),
            temp_c_end=_num(e.get("temp_c_end")),
            throttled=_bool(e.get("throttled")),
            cpu_freq_mhz=_num(e.get("cpu_freq_mhz")),
            governor=_str(e.get("governor")),
            load_avg=loads,
        )


@dataclass(frozen=True)
class Result:
    """One result document, read. ``raw`` is the document as it came (keys a newer
    profiler adds are never lost); every other attribute is typed."""

    raw: Mapping[str, Any]
    version: int
    status: str
    job_id: str | None
    label: str | None
    created_at: str | None
    device: DeviceSection
    model: ModelSection
    runtime: RuntimeSection
    settings: SettingsSection
    latency: LatencySection | None
    init_ms: float | None
    first_inference_ms: float | None
    memory: MemorySection
    accuracy: AccuracySection | None
    accuracy_error: ErrorSection | None
    env: EnvSection
    flags: tuple[str, ...]
    error: ErrorSection | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def capped(self) -> bool:
        """True when the steady state was cut short by ``--max-seconds``."""
        steady = _map(_map(self.raw.get("phases")).get("steady"))
        return steady.get("capped") is True or "capped" in self.flags

    def samples(self) -> list[int] | None:
        """The kept raw per-run latencies in ns (time order), or None when the result
        has none or they cannot be decoded."""
        doc = self.raw.get("samples")
        if not isinstance(doc, Mapping):
            return None
        try:
            return decode_samples(doc)
        except ValueError:
            return None

    def section(self, key: str) -> Mapping[str, Any]:
        """An optional section as it came (``energy``, ``phases``, …), or an empty mapping."""
        return _map(self.raw.get(key))


def schema_version(doc: Mapping[str, Any]) -> int:
    """The version of a result document's schema; ResultError when it is none we read."""
    schema = doc.get("schema")
    if not isinstance(schema, str):
        raise ResultError("not an edgeprof result document (no schema)")
    family, sep, version = schema.partition("/")
    if family != SCHEMA_FAMILY or not sep or not version.isdigit():
        raise ResultError(f"not an edgeprof result document (schema {schema[:60]!r})")
    number = int(version)
    if number not in READABLE_VERSIONS:
        newer = number > max(READABLE_VERSIONS)
        raise ResultError(
            f"result schema {schema!r} is "
            + ("newer than this edgeprof reads: upgrade edgeprof" if newer else "not readable")
        )
    return number


def read_result(doc: Any) -> Result:
    """Read one result document. ResultError when it is not a readable result
    (not an object, no or an unknown schema); every field of the wrong type reads
    as None (or empty) instead of failing."""
    if not isinstance(doc, Mapping):
        raise ResultError("a result document must be a JSON object")
    version = schema_version(doc)
    status = doc.get("status")
    error = ErrorSection.read(doc.get("error"))
    if status not in ("ok", "error"):
        status = "error"
    if status == "error" and error is None:
        error = ErrorSection("error", "the result reports no error detail")
    return Result(
        raw=doc,
        version=version,
        status=status,
        job_id=_str(doc.get("job_id")),
        label=_str(doc.get("label")),
        created_at=_str(doc.get("created_at")),
        device=DeviceSection.read(doc.get("device")),
        model=ModelSection.read(doc.get("model")),
        runtime=RuntimeSection.read(doc.get("runtime")),
        settings=SettingsSection.read(doc.get("settings")),
        latency=LatencySection.read(doc.get("latency_ms")),
        init_ms=_num(doc.get("init_ms")),
        first_inference_ms=_num(doc.get("first_inference_ms")),
        memory=MemorySection.read(doc.get("memory_mb")),
        accuracy=AccuracySection.read(doc.get("accuracy")),
        accuracy_error=ErrorSection.read(doc.get("accuracy_error")),
        env=EnvSection.read(doc.get("env")),
        flags=_strs(doc.get("flags")),
        error=error if status == "error" else None,
    )


__all__ = [
    "READABLE_VERSIONS",
    "RESULT_SCHEMA",
    "SAMPLES_ENCODING",
    "Interval",
    "Result",
    "ResultError",
    "decode_samples",
    "encode_samples",
    "read_result",
    "schema_version",
]
