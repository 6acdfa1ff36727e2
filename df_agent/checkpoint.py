"""Model checkpoints: a directory holding `config.json` and `model.safetensors`, never a pickle.

Layout of a checkpoint directory:

    config.json          format tag, `model_type`, the model's `config_dict()`, metadata (training step, data
                         description, ...), library versions and the size and sha256 of the weight file
    model.safetensors    the weights (EMA weights when written by the training loop), normaliser buffers included
    training_state/      optional, written by the training loop for resuming (see `df_agent.training.state`)

Loading reads JSON and safetensors only, so opening a checkpoint never executes code. The class to build is
looked up by `model_type` in a registry of import paths; importing an installed df-agent module is the only
code that runs, never anything named by the file beyond a registered key.

Writes are atomic: everything goes into a temporary directory next to the target, is fsynced, and then replaces
the target in one step (an atomic directory exchange on Linux), so a crash at any moment leaves either the old
or the new checkpoint complete and loadable.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import importlib
import json
import logging
import os
import platform
import shutil
import struct
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINING_STATE_DIR = "training_state"
CHECKPOINT_FORMAT = "df-agent-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1

# Suffixes of files produced by torch.save / pickle. Loading them runs arbitrary code, so they are refused.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")

# Checkpoints shipped inside the package: df_agent/checkpoints/NAME (maze2d-umaze, maze2d-medium, maze2d-large,
# franka-swap).
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


def shipped_checkpoint(name: str) -> Path:
    """The directory of the shipped checkpoint NAME (it may be absent from a checkout without the weights)."""
    return SHIPPED_CHECKPOINTS / name


def shipped_checkpoint_names() -> list[str]:
    return sorted(p.name for p in SHIPPED_CHECKPOINTS.iterdir() if (p / CONFIG_FILE).is_file())


def resolve_checkpoint(name_or_dir: str | Path) -> Path:
    """A checkpoint directory given as a path, or as the name of a shipped checkpoint (`franka-swap`).

    A directory that exists wins over a shipped name; neither is an error that lists the shipped names."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    shipped = shipped_checkpoint(str(name_or_dir))
    if len(path.parts) == 1 and (shipped / CONFIG_FILE).is_file():
        return shipped
    raise FileNotFoundError(f"checkpoint {str(name_or_dir)!r} is neither a directory nor a shipped checkpoint "
                            f"(shipped: {', '.join(shipped_checkpoint_names())})")


# model_type -> "module:Class" (imported lazily) or a class object. Heads add theirs with `register_model_type`;
# types that must load in a fresh process without prior imports belong in this default table.
DEFAULT_MODEL_TYPES: dict[str, str] = {
    "df_lowdim": "df_agent.model:DFModel",
    "video_df": "df_agent.video.model:VideoDFModel",
    "video_feature_encoder": "df_agent.video.encoder:FrameAutoencoder",
    "forecast_df_gru": "df_agent.forecasting.model:ForecastDF",
    "df_imitation": "df_agent.imitation.model:ImitationDFModel",
}
_model_types: dict[str, str | type[nn.Module]] = dict(DEFAULT_MODEL_TYPES)


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint directory or one of its files does not exist."""


# ----------------------------------------------------------------------------------------------------------------
# Registry of model types


def register_model_type(name: str, target: str | type[nn.Module], *, overwrite: bool = False) -> None:
    """Map `model_type` `name` to a class, given as "package.module:ClassName" (imported on first load) or a class."""
    if not name or not isinstance(name, str):
        raise ValueError(f"model_type name must be a non-empty string, got {name!r}")
    if isinstance(target, str):
        module_name, sep, class_name = target.partition(":")
        if not sep or not module_name or not class_name:
            raise ValueError(f"model_type {name!r}: import path must look like 'package.module:ClassName', "
                             f"got {target!r}")
    elif not (isinstance(target, type) and issubclass(target, nn.Module)):
        raise TypeError(f"model_type {name!r}: target must be an import path or an nn.Module subclass, got {target!r}")
    existing = _model_types.get(name)
    if existing is not None and existing != target and not overwrite:
        raise ValueError(f"model_type {name!r} is already registered as {_describe_target(existing)}; "
                         "pass overwrite=True to replace it")
    _model_types[name] = target


def registered_model_types() -> dict[str, str]:
    """The known model types and where their classes live."""
    return {name: _describe_target(target) for name, target in sorted(_model_types.items())}


def resolve_model_class(model_type: str) -> type[nn.Module]:
    """The class registered for `model_type`, importing its module if needed."""
    target = _model_types.get(model_type)
    if target is None:
        known = ", ".join(sorted(_model_types)) or "none"
        raise CheckpointError(f"unknown model_type {model_type!r} (registered: {known}); "
                              "the module that defines it must call df_agent.checkpoint.register_model_type")
    if isinstance(target, type):
        return target
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CheckpointError(f"model_type {model_type!r} is registered as {target!r}, "
                              f"but module {module_name!r} cannot be imported: {error}") from error
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"model_type {model_type!r} is registered as {target!r}, "
                              f"but {module_name} has no nn.Module subclass named {class_name!r}")
    return cls


def _describe_target(target: str | type) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


# ----------------------------------------------------------------------------------------------------------------
# Saving


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors

    from df_agent import __version__

    return {
        "df_agent": __version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def tensors_for_safetensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies; tensors that share memory (tied weights) get their own copy."""
    out: dict[str, Tensor] = {}
    seen_storage: set[int] = set()
    for name, tensor in state.items():
        if not isinstance(tensor, Tensor):
            raise CheckpointError(f"state entry {name!r} is {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().cpu()
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        if pointer is not None and pointer in seen_storage:
            tensor = tensor.clone()
        elif pointer is not None:
            seen_storage.add(pointer)
        out[name] = tensor.contiguous()
    return out


def write_safetensors(path: Path, tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file and fsync it (the caller arranges atomicity by writing into a temp directory)."""
    from safetensors.torch import save_file

    save_file(tensors_for_safetensors(tensors), str(path), metadata={"format": "pt", **(metadata or {})})
    _fsync_file(path)


def write_json(path: Path, data: Any) -> None:
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot write {path.name}: content is not JSON-serialisable ({error})") from error
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def save_checkpoint(
    directory: str | os.PathLike[str],
    model: nn.Module,
    metadata: Mapping[str, Any] | None = None,
    *,
    state_dict: Mapping[str, Tensor] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write `model` as a checkpoint directory, atomically replacing any previous one at that path.

    `state_dict` overrides the weights written (default: `model.state_dict()`); `write_extra(tmp_dir)` may add
    files (the training loop writes `training_state/` this way, so weights and training state swap in together).
    Returns the checkpoint path.
    """
    target = Path(directory)
    model_type = getattr(type(model), "model_type", None)
    if not isinstance(model_type, str) or not model_type:
        raise CheckpointError(f"{type(model).__name__} has no class attribute `model_type`; it cannot be checkpointed")
    if not callable(getattr(model, "config_dict", None)):
        raise CheckpointError(f"{type(model).__name__} has no config_dict() method; it cannot be checkpointed")
    model_config = model.config_dict()
    weights = dict(model.state_dict() if state_dict is None else state_dict)

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_safetensors(tmp / WEIGHTS_FILE, weights, metadata={"model_type": model_type})
        weights_path = tmp / WEIGHTS_FILE
        config = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "model_type": model_type,
            "model_config": model_config,
            "metadata": dict(metadata or {}),
            "versions": library_versions(),
            "files": {WEIGHTS_FILE: {"bytes": weights_path.stat().st_size, "sha256": _sha256(weights_path)}},
        }
        write_json(tmp / CONFIG_FILE, config)
        if write_extra is not None:
            write_extra(tmp)
        _fsync_tree(tmp)
        _replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.debug("wrote checkpoint %s", target)
    return target


def _replace_directory(new: Path, target: Path) -> None:
    """Make `new` appear at `target`; the old content of `target` (if any) is deleted afterwards."""
    if not target.exists():
        os.rename(new, target)
        _fsync_dir(target.parent)
        return
    if not target.is_dir():
        raise CheckpointError(f"cannot write checkpoint to {target}: a file (not a directory) is in the way")
    if _exchange_paths(new, target):
        # `new` now holds the previous checkpoint.
        _fsync_dir(target.parent)
        shutil.rmtree(new, ignore_errors=True)
        return
    # Without an atomic exchange (non-Linux, or a file system without RENAME_EXCHANGE) move the old one aside
    # first; load_checkpoint finds that backup if a crash strikes between the two renames.
    backup = target.parent / f".{target.name}.previous-{uuid.uuid4().hex[:8]}"
    os.rename(target, backup)
    os.rename(new, target)
    _fsync_dir(target.parent)
    shutil.rmtree(backup, ignore_errors=True)


def _exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where the OS cannot do it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"renameat2 exchange of {a} and {b} failed: {os.strerror(code)}")


def _remove_stale_temp_dirs(target: Path) -> None:
    """Remove temp directories left by a save that crashed (only this target's, and only of dead processes)."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        pid_text = stale.name.rsplit(".tmp-", 1)[-1].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _process_alive(int(pid_text)):
            continue
        shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync directories; the data is synced anyway
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            _fsync_file(path)
        elif path.is_dir():
            _fsync_dir(path)
    _fsync_dir(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Loading


def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The checkpoint directory for `path`; refuses pickle files and names what is missing."""
    path = Path(path)
    if path.is_file():
        if path.name in (CONFIG_FILE, WEIGHTS_FILE):
            return path.parent
        _refuse_if_pickle(path)
        raise CheckpointError(f"{path} is a file; a df-agent checkpoint is a directory containing "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE}")
    if not path.exists():
        backups = sorted(path.parent.glob(f".{path.name}.previous-*")) if path.parent.exists() else []
        complete = [b for b in backups if (b / CONFIG_FILE).is_file() and (b / WEIGHTS_FILE).is_file()]
        if complete:
            # Only reachable after a crash between the two renames of the non-atomic fallback in save_checkpoint.
            log.warning("checkpoint %s is missing, but an interrupted save left the previous one at %s; loading that",
                        path, complete[-1])
            return complete[-1]
        raise CheckpointNotFoundError(f"checkpoint directory {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is neither a file nor a directory")
    if not (path / WEIGHTS_FILE).exists():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{path} contains {', '.join(pickles)} but no {WEIGHTS_FILE}: pickle-based weight files (torch.save) "
                "are refused because loading them can execute arbitrary code; convert them with a trusted script "
                "(torch.load(..., weights_only=True) then df_agent.checkpoint.save_checkpoint)")
        raise CheckpointNotFoundError(f"{path / WEIGHTS_FILE} does not exist (not a df-agent checkpoint directory?)")
    if not (path / CONFIG_FILE).exists():
        raise CheckpointNotFoundError(f"{path / CONFIG_FILE} does not exist (not a df-agent checkpoint directory?)")
    return path


def _looks_pickled(path: Path) -> bool:
    """Whether a file starts like a pickle (protocol 2-5) or torch.save's zip and is not safetensors.

    A safetensors file starts with its header length as a little-endian u64 followed by '{'; a length such as
    640 (0x280) begins with the bytes 0x80 0x02, a pickle's protocol-2 opcode, so the pickle test alone would
    refuse valid weights. A file that parses as a safetensors header is therefore never called a pickle.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len <= size - 8 and head[8:9] == b"{":
            return False
    return (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or head[:4] == b"PK\x03\x04"


def _refuse_if_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(path):
        raise CheckpointError(
            f"{path} is a pickle-based file (torch.save / pickle format); df-agent refuses to load it because "
            "unpickling can execute arbitrary code. A df-agent checkpoint is a directory with "
            f"{CONFIG_FILE} + {WEIGHTS_FILE}; convert trusted weights with "
            "torch.load(path, weights_only=True) and df_agent.checkpoint.save_checkpoint")


def read_checkpoint_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and validate `config.json` of a checkpoint (format, model_type, model_config, metadata)."""
    directory = resolve_checkpoint_dir(path)
    config_path = directory / CONFIG_FILE
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{config_path} is not UTF-8 text ({error})") from error
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path} is not valid JSON: {error.msg} at line {error.lineno} "
                              f"column {error.colno}") from error
    return validate_checkpoint_config(config, config_path)


def validate_checkpoint_config(config: Any, config_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a parsed `config.json` (format, model_type, model_config, metadata); returns it unchanged."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object, got {type(config).__name__}")
    if config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{config_path}: 'format' is {config.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{config_path}: format_version {version!r} is not supported "
                              f"(this df-agent reads up to {CHECKPOINT_FORMAT_VERSION})")
    if not isinstance(config.get("model_type"), str):
        raise CheckpointError(f"{config_path}: missing or non-string 'model_type'")
    if not isinstance(config.get("model_config"), dict):
        raise CheckpointError(f"{config_path}: missing or non-object 'model_config'")
    if not isinstance(config.get("metadata", {}), dict):
        raise CheckpointError(f"{config_path}: 'metadata' must be an object")
    return config


def read_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """Validate the structure of a safetensors file without loading it: returns {name: {dtype, shape, ...}}.

    Catches truncation, trailing garbage, pickles and garbage headers with a message that names the file.
    """
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path} does not exist")
    size = path.stat().st_size
    pickled = _looks_pickled(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if pickled:
            raise CheckpointError(f"{path} is a pickle/torch.save file renamed to .safetensors; refusing to load it "
                                  "because unpickling can execute arbitrary code")
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated or not safetensors: {size} bytes, "
                                  "shorter than the 8-byte header")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            raise CheckpointError(f"{path} is truncated or not safetensors: header claims {header_len} bytes "
                                  f"but the file has only {size - 8} after the length field")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is corrupted: its safetensors header is not valid JSON ({error})") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupted: its safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    data_len = size - 8 - header_len
    end = 0
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and "shape" in entry and "dtype" in entry):
            raise CheckpointError(f"{path} is corrupted: header entry for tensor {name!r} is malformed")
        end = max(end, int(offsets[1]))
    if end > data_len:
        raise CheckpointError(f"{path} is truncated: its header describes {end} bytes of tensor data "
                              f"but the file holds only {data_len}")
    if end < data_len:
        raise CheckpointError(f"{path} is corrupted: {data_len - end} unexpected bytes after the tensor data")
    return header


def load_safetensors(path: Path, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Load every tensor of a safetensors file after validating its structure."""
    from safetensors.torch import load_file

    read_safetensors_header(path)
    try:
        return load_file(str(path), device=str(device))
    except Exception as error:  # safetensors raises its own SafetensorError for bad content
        raise CheckpointError(f"{path} could not be read as safetensors: {error}") from error


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    verify_checksum: bool = True,
    config: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build the model a checkpoint directory describes and load its weights; returns it in eval mode.

    The weights are checked against the model built from `config.json` (every key present, no extra keys,
    equal shapes) before anything is copied, and against the sha256 recorded at save time.
    config: the directory's config.json as `read_checkpoint_config` returned it, when the caller has read it
    already (it is then not read again).
    """
    directory = resolve_checkpoint_dir(path)
    config = read_checkpoint_config(directory) if config is None else config
    weights_path = directory / WEIGHTS_FILE
    header = read_safetensors_header(weights_path)
    recorded = config.get("files", {}).get(WEIGHTS_FILE, {})
    if verify_checksum and recorded.get("sha256"):
        actual = _sha256(weights_path)
        if actual != recorded["sha256"]:
            raise CheckpointError(f"{weights_path} does not match the sha256 recorded in {directory / CONFIG_FILE} "
                                  "(the file is corrupted, or was replaced without updating config.json)")

    model_type = config["model_type"]
    cls = resolve_model_class(model_type)
    if getattr(cls, "model_type", model_type) != model_type:
        raise CheckpointError(f"{directory / CONFIG_FILE}: model_type {model_type!r} resolves to "
                              f"{cls.__name__}, whose model_type is {cls.model_type!r}")
    try:
        model = cls.from_config(config["model_config"])
    except Exception as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: model_config is not valid for {cls.__name__} "
                              f"({type(error).__name__}: {error})") from error

    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    stored = {name: tuple(entry["shape"]) for name, entry in header.items()}
    problems = describe_state_mismatch(expected, stored)
    if problems:
        raise CheckpointError(f"{weights_path} does not match the model described by {CONFIG_FILE} "
                              f"({model_type}): " + "; ".join(problems))
    tensors = load_safetensors(weights_path)
    model.load_state_dict(tensors, strict=True)
    model.to(map_location)
    model.eval()
    return model


def describe_state_mismatch(expected: Mapping[str, tuple[int, ...]], stored: Mapping[str, tuple[int, ...]],
                            limit: int = 8) -> list[str]:
    """Human-readable differences between two {name: shape} maps (empty when they agree)."""
    problems: list[str] = []
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing:
        problems.append(f"missing tensors {_short_list(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected tensors {_short_list(unexpected, limit)}")
    shape_errors = [f"{name}: file {list(stored[name])} vs model {list(expected[name])}"
                    for name in sorted(set(expected) & set(stored)) if tuple(expected[name]) != tuple(stored[name])]
    if shape_errors:
        problems.append("shape mismatch " + _short_list(shape_errors, limit))
    return problems


def _short_list(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... ({len(items) - limit} more)' if len(items) > limit else ''}]"
