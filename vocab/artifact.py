"""The vocab artifact: an immutable, content-addressed directory (DESIGN.md, "Vocab artifact").

artifact_id = write_artifact("out/vocab-en", lang="en", fine_vocab_lines=..., coarse_units=..., ...)
verify_artifact("out/vocab-en"); url = publish("out/vocab-en", "s3://bucket/vocab"); pull(url, "dir")
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Callable

SCHEMA_VERSION = 1
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
DICTIONARY_FILES = {"en": "phrases.tsv", "zh": "words.tsv"}
SIMILAR_WORDS_FILE = "similar.tsv"  # optional: MacBERT's similar words (vocab/similar_words.py), hashed like the rest
NOT_IN_ID = ("stats.json",)
_ID = re.compile(r"[0-9a-f]{64}")


class ArtifactError(RuntimeError):
    """An artifact that is missing, incomplete, tampered with or inconsistent."""


def read_vocab_lines(path: str) -> list[str]:
    """A vocab.txt as a token list (split on "\n" only: tokens such as U+2028 are not breaks)."""
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def artifact_id(document: dict) -> str:
    """The content id of an artifact.json document: the sha256 of the canonical JSON of schema,
    lang, special tokens, segmenter and every file's sha256 but stats.json's (corpus statistics
    and timings, which do not change tokenization). created_from is not part of it either."""
    files = {path: digest for path, digest in document["files"].items() if path not in NOT_IN_ID}
    core = {key: document[key] for key in ("schema_version", "lang", "special_tokens", "segmenter")}
    return _sha256(_canonical({**core, "files": files}))


def fine_tokenizer_json(vocab_lines: list[str]) -> str:
    """BERT's uncased WordPiece tokenizer on `vocab_lines`, as a `tokenizers` JSON document."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {token: index for index, token in enumerate(vocab_lines)}
    missing = [token for token in SPECIAL_TOKENS.values() if token not in vocab]
    if missing:
        raise ArtifactError(f"the fine vocabulary lacks BERT's special tokens {missing}")
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer.to_str(pretty=True)


def _check_relative_path(path: str, where: str) -> None:
    """Artifact file names are plain relative POSIX paths: never absolute, never with '..'."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts):
        raise ArtifactError(f"{where}: file name {path!r} is not a plain relative path inside the artifact")


def _check_tokens(tokens: list[str], what: str) -> None:
    for number, token in enumerate(tokens):
        if not token or "\n" in token:
            raise ArtifactError(
                f"{what}: entry {number} ({token!r}) is empty or holds a newline; vocab.txt has one token per line"
            )


def write_artifact(
    out_dir: str,
    *,
    lang: str,
    fine_vocab_lines: list[str],
    coarse_units: list[str],
    dictionary_file_name: str,
    dictionary_bytes: bytes,
    segmenter_spec: dict | None,
    created_from: dict,
    stats: dict,
    extra_files: dict[str, bytes] | None = None,
    similar_words_bytes: bytes | None = None,
) -> str:
    """Write the artifact directory atomically; returns its id. Coarse vocab = fine + new units.

    `out_dir` must be absent, empty or hold an artifact (which is replaced); `extra_files` (e.g.
    segmenter/user_dict.txt) and the similar-word table (similar.tsv, when given) are stored and
    hashed like the others, so they are part of the id.
    """
    if lang not in DICTIONARY_FILES:
        raise ArtifactError(f"lang must be one of {sorted(DICTIONARY_FILES)}, got {lang!r}")
    if dictionary_file_name != DICTIONARY_FILES[lang]:
        raise ArtifactError(f"a {lang} artifact's dictionary is {DICTIONARY_FILES[lang]}, not {dictionary_file_name}")
    if (segmenter_spec is None) != (lang == "en"):
        raise ArtifactError("a zh artifact records its segmenter (segmenter_spec(...)); an en artifact has none")
    if len(set(fine_vocab_lines)) != len(fine_vocab_lines):
        raise ArtifactError("the fine vocabulary has duplicate tokens")
    _check_tokens(fine_vocab_lines, "fine vocabulary")
    _check_tokens(coarse_units, "coarse units")
    fine_set = set(fine_vocab_lines)
    units = [unit for unit in dict.fromkeys(coarse_units) if unit not in fine_set]
    contents: dict[str, bytes] = {
        "fine/vocab.txt": "".join(f"{t}\n" for t in fine_vocab_lines).encode("utf-8"),
        "fine/tokenizer.json": fine_tokenizer_json(fine_vocab_lines).encode("utf-8"),
        "coarse/vocab.txt": "".join(f"{t}\n" for t in [*fine_vocab_lines, *units]).encode("utf-8"),
        dictionary_file_name: dictionary_bytes,
        "stats.json": json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }
    if similar_words_bytes is not None:
        contents[SIMILAR_WORDS_FILE] = similar_words_bytes
    for path, data in (extra_files or {}).items():
        _check_relative_path(path, "extra_files")
        if path in contents or path == "artifact.json":
            raise ArtifactError(f"extra_files: {path} is one of the artifact's own files")
        contents[path] = data
    document = {
        "schema_version": SCHEMA_VERSION,
        "lang": lang,
        "special_tokens": SPECIAL_TOKENS,
        "segmenter": segmenter_spec,
        "sizes": {
            "fine": len(fine_vocab_lines),
            "coarse": len(fine_vocab_lines) + len(units),
            "coarse_units": len(units),
        },
        "dictionary": dictionary_file_name,
        "created_from": created_from,
        "files": {path: _sha256(data) for path, data in sorted(contents.items())},
    }
    document["id"] = artifact_id(document)
    contents["artifact.json"] = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    _write_directory(os.path.abspath(out_dir), contents)
    return document["id"]


def _write_directory(directory: str, contents: dict[str, bytes], verify: bool = False) -> None:
    """Write `contents` (relative path → bytes) into a temporary sibling of `directory`, verify it
    if asked, then move it into place; nothing partial is ever left under `directory`."""
    _check_replaceable(directory)
    tmp = f"{directory}.tmp-{uuid.uuid4().hex}"
    try:
        for path, data in contents.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, path)), exist_ok=True)
            with open(os.path.join(tmp, path), "wb") as handle:
                handle.write(data)
        if verify:
            verify_artifact(tmp)
        _move_into_place(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_replaceable(directory: str) -> None:
    """Refuse to replace anything but nothing, an empty directory or an artifact directory."""
    if not os.path.lexists(directory):
        return
    if os.path.isdir(directory) and not os.path.islink(directory):
        if not os.listdir(directory) or os.path.isfile(os.path.join(directory, "artifact.json")):
            return
    raise ArtifactError(
        f"refusing to replace {directory}: it exists and is not a vocab artifact (no artifact.json); "
        "choose a new directory or remove it"
    )


def _move_into_place(tmp: str, directory: str) -> None:
    """Rename the finished `tmp` to `directory`, swapping out an existing (checked) one."""
    _check_replaceable(directory)
    if not os.path.lexists(directory):
        os.rename(tmp, directory)
        return
    old = f"{directory}.old-{uuid.uuid4().hex}"
    os.rename(directory, old)
    os.rename(tmp, directory)
    shutil.rmtree(old)


def read_artifact(directory: str) -> dict:
    """artifact.json of `directory`, plus its stats.json under "stats"."""
    path = os.path.join(directory, "artifact.json")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError as error:
        raise ArtifactError(f"no vocab artifact at {directory}: {path} is missing") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from error
    _check_document(document, path)
    stats_path = os.path.join(directory, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as handle:
            document["stats"] = json.load(handle)
    return document


def _check_document(document, where: str) -> None:
    """The shape of an artifact.json: schema, the files it must list, safe file names."""
    if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
        found = document.get("schema_version") if isinstance(document, dict) else None
        raise ArtifactError(f"{where}: schema_version {found} is not {SCHEMA_VERSION}")
    missing = [
        key for key in ("id", "lang", "special_tokens", "segmenter", "dictionary", "files") if key not in document
    ]
    if missing or not isinstance(document["files"], dict):
        raise ArtifactError(f"{where}: artifact.json lacks {missing or ['files']}; it is not a vocab artifact")
    for path in document["files"]:
        _check_relative_path(path, where)
    needed = ["fine/vocab.txt", "fine/tokenizer.json", "coarse/vocab.txt", document["dictionary"], "stats.json"]
    unlisted = [path for path in needed if path not in document["files"]]
    if unlisted:
        raise ArtifactError(f"{where}: artifact.json does not list {unlisted}; the artifact is incomplete")


def verify_files(document: dict, read: Callable[[str], bytes], where: str) -> dict[str, bytes]:
    """Check every listed file's sha256 (via `read(relative_path) -> bytes`) and the id; returns the
    files' contents. `where` (a directory or URL) names the artifact in errors."""
    contents = {}
    for path, digest in sorted(document["files"].items()):
        try:
            data = read(path)
        except FileNotFoundError as error:
            raise ArtifactError(
                f"artifact {where} is incomplete: {path} is missing; publish, pull or build it again"
            ) from error
        if _sha256(data) != digest:
            raise ArtifactError(
                f"artifact {where}: {path} does not match its sha256 in artifact.json (tampered "
                "or partial); publish, pull or build it again"
            )
        contents[path] = data
    if artifact_id(document) != document.get("id"):
        raise ArtifactError(f"artifact {where}: artifact.json's id {document.get('id')} does not match its content")
    return contents


def verify_artifact(directory: str) -> dict:
    """Recompute every file's sha256 and the id; returns artifact.json, or raises ArtifactError."""
    document = read_artifact(directory)
    document.pop("stats", None)

    def read(path: str) -> bytes:
        with open(os.path.join(directory, path), "rb") as handle:
            return handle.read()

    verify_files(document, read, directory)
    return document


def _read_remote(fs, location: str, where: str) -> tuple[dict, dict[str, bytes]]:
    """artifact.json and the verified contents of every file of the artifact at `location`."""
    try:
        raw = fs.cat_file(f"{location}/artifact.json")
    except FileNotFoundError as error:
        raise ArtifactError(f"no artifact.json at {where}: not a vocab artifact, or an interrupted publish") from error
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{where}/artifact.json is not valid JSON: {error}") from error
    _check_document(document, f"{where}/artifact.json")
    contents = verify_files(document, lambda path: fs.cat_file(f"{location}/{path}"), where)
    contents["artifact.json"] = raw
    return document, contents


def publish(directory: str, url: str) -> str:
    """Upload a verified artifact to URL/ID; returns URL/ID. Files go to a temporary name first and
    are then moved into place, artifact.json last. Idempotent: an existing, valid URL/ID is kept."""
    import fsspec

    document = verify_artifact(directory)
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    destination = f"{root}/{document['id']}"
    published = f"{url.rstrip('/')}/{document['id']}"
    if fs.exists(f"{destination}/artifact.json"):
        try:
            _read_remote(fs, destination, published)
        except ArtifactError as error:
            raise ArtifactError(f"{published} exists but is broken ({error}); remove it, then publish again") from error
        return published
    staging = f"{root}/.tmp-{document['id']}-{uuid.uuid4().hex}"
    order = [*sorted(document["files"]), "artifact.json"]  # artifact.json last: the completion marker
    try:
        for path in order:
            fs.makedirs(posixpath.dirname(f"{staging}/{path}"), exist_ok=True)
            fs.put_file(os.path.join(directory, path), f"{staging}/{path}")
        for path in order:
            fs.makedirs(posixpath.dirname(f"{destination}/{path}"), exist_ok=True)
            fs.mv(f"{staging}/{path}", f"{destination}/{path}")
    finally:
        if fs.exists(staging):
            fs.rm(staging, recursive=True)
    return published


def pull(url: str, directory: str) -> str:
    """Download URL/ID (or URL holding exactly one artifact) into `directory`, every file verified
    before anything lands there; returns `directory`. Idempotent for the same artifact."""
    import fsspec

    fs, location = fsspec.core.url_to_fs(url)
    location, where = location.rstrip("/"), url.rstrip("/")
    if not fs.exists(f"{location}/artifact.json"):
        location, where = _single_artifact(fs, location, where)
    document, contents = _read_remote(fs, location, where)
    name = posixpath.basename(location)
    if _ID.fullmatch(name) and name != document["id"]:
        raise ArtifactError(f"{where} holds artifact {document['id']}, not {name}: it was renamed or overwritten")
    directory = os.path.abspath(directory)
    if os.path.isfile(os.path.join(directory, "artifact.json")):
        try:
            existing = verify_artifact(directory)["id"]
        except ArtifactError:
            existing = None  # a broken copy: replace it
        if existing == document["id"]:
            return directory
        if existing is not None:
            raise ArtifactError(
                f"{directory} already holds artifact {existing}; pull {document['id']} into an empty or new directory"
            )
    _write_directory(directory, contents, verify=True)
    return directory


def _single_artifact(fs, location: str, where: str) -> tuple[str, str]:
    """The one artifact under `location` (a folder of URL/ID artifacts), or a clear error."""
    if not fs.isdir(location):
        raise ArtifactError(f"nothing at {where}: no artifact and no folder of artifacts")
    entries = fs.ls(location, detail=False)
    found = sorted(
        p.rstrip("/")
        for p in entries
        if not posixpath.basename(p.rstrip("/")).startswith(".") and fs.exists(f"{p}/artifact.json")
    )
    if len(found) == 1:
        return found[0], f"{where}/{posixpath.basename(found[0])}"
    if not found and any(posixpath.basename(p.rstrip("/")) in ("fine", "coarse") for p in entries):
        raise ArtifactError(
            f"{where} is an incomplete artifact (artifact.json is missing, e.g. an interrupted "
            "publish); publish it again"
        )
    listing = ", ".join(posixpath.basename(p) for p in found) or "none"
    raise ArtifactError(f"{where} holds {len(found)} artifacts ({listing}); pull {where}/<id> for one of them")
