"""The vocab artifact: an immutable, content-addressed directory (DESIGN.md, "Vocab artifact").

    artifact_id = write_artifact("out/vocab-en", lang="en", fine_vocab_lines=..., coarse_units=..., ...)
    verify_artifact("out/vocab-en"); publish("out/vocab-en", "s3://bucket/vocab"); pull(url, "dir")

`artifact.json` lists every other file with its sha256. The id is the sha256 of the canonical
JSON of what defines tokenization (schema, lang, special tokens, segmenter, and the files'
hashes except stats.json, whose timings vary between identical builds), so the same vocabulary
gets the same id whatever the corpus path or the build time. Writes and pulls go through a
temporary sibling directory renamed into place; a pull verifies every file before the rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

SCHEMA_VERSION = 1
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
NOT_IN_ID = ("stats.json",)


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
    """The content id of an artifact.json document (its `id` field itself excluded)."""
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


def write_artifact(out_dir: str, *, lang: str, fine_vocab_lines: list[str], coarse_units: list[str],
                   dictionary_file_name: str, dictionary_bytes: bytes, segmenter_spec: dict | None,
                   created_from: dict, stats: dict, extra_files: dict[str, bytes] | None = None) -> str:
    """Write the artifact directory atomically; returns its id. Coarse vocab = fine + units."""
    if len(set(fine_vocab_lines)) != len(fine_vocab_lines):
        raise ArtifactError("the fine vocabulary has duplicate tokens")
    fine_set = set(fine_vocab_lines)
    units = [unit for unit in dict.fromkeys(coarse_units) if unit not in fine_set]
    contents: dict[str, bytes] = {
        "fine/vocab.txt": "".join(f"{t}\n" for t in fine_vocab_lines).encode("utf-8"),
        "fine/tokenizer.json": fine_tokenizer_json(fine_vocab_lines).encode("utf-8"),
        "coarse/vocab.txt": "".join(f"{t}\n" for t in [*fine_vocab_lines, *units]).encode("utf-8"),
        dictionary_file_name: dictionary_bytes,
        "stats.json": json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8"),
        **(extra_files or {}),
    }
    document = {
        "schema_version": SCHEMA_VERSION,
        "lang": lang,
        "special_tokens": SPECIAL_TOKENS,
        "segmenter": segmenter_spec,
        "sizes": {"fine": len(fine_vocab_lines), "coarse": len(fine_vocab_lines) + len(units),
                  "coarse_units": len(units)},
        "dictionary": dictionary_file_name,
        "created_from": created_from,
        "files": {path: _sha256(data) for path, data in sorted(contents.items())},
    }
    document["id"] = artifact_id(document)
    contents["artifact.json"] = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    out_dir = os.path.abspath(out_dir)
    tmp = f"{out_dir}.tmp-{uuid.uuid4().hex}"
    for path, data in contents.items():
        os.makedirs(os.path.dirname(os.path.join(tmp, path)), exist_ok=True)
        with open(os.path.join(tmp, path), "wb") as handle:
            handle.write(data)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.rename(tmp, out_dir)
    return document["id"]


def read_artifact(directory: str) -> dict:
    """artifact.json of `directory`, plus its stats.json under "stats"."""
    path = os.path.join(directory, "artifact.json")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError as error:
        raise ArtifactError(f"no vocab artifact at {directory}: {path} is missing") from error
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from error
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: schema_version {document.get('schema_version')} is not {SCHEMA_VERSION}")
    stats_path = os.path.join(directory, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as handle:
            document["stats"] = json.load(handle)
    return document


def verify_files(document: dict, read) -> None:
    """Check every listed file's sha256 (via `read(relative_path) -> bytes`) and the id."""
    for path, digest in document["files"].items():
        try:
            data = read(path)
        except FileNotFoundError as error:
            raise ArtifactError(f"artifact {document.get('id')} is incomplete: {path} is missing") from error
        if _sha256(data) != digest:
            raise ArtifactError(f"artifact {document.get('id')}: {path} does not match its sha256 (tampered or "
                                "partial); pull or build it again")
    if artifact_id(document) != document.get("id"):
        raise ArtifactError(f"artifact.json's id {document.get('id')} does not match its content")


def verify_artifact(directory: str) -> dict:
    document = read_artifact(directory)
    document.pop("stats", None)

    def read(path: str) -> bytes:
        with open(os.path.join(directory, path), "rb") as handle:
            return handle.read()

    verify_files(document, read)
    return document


def publish(directory: str, url: str) -> str:
    """Upload a verified artifact to URL/ID (artifact.json last); returns URL/ID. Idempotent."""
    import fsspec

    document = verify_artifact(directory)
    fs, root = fsspec.core.url_to_fs(url)
    destination = f"{root.rstrip('/')}/{document['id']}"
    if fs.exists(f"{destination}/artifact.json"):
        _verify_remote(fs, destination)
        return f"{url.rstrip('/')}/{document['id']}"
    staging = f"{root.rstrip('/')}/.tmp-{document['id']}-{uuid.uuid4().hex}"
    for path in [*document["files"], "artifact.json"]:
        fs.makedirs(os.path.dirname(f"{staging}/{path}"), exist_ok=True)
        fs.put_file(os.path.join(directory, path), f"{staging}/{path}")
    if fs.exists(destination):
        fs.rm(destination, recursive=True)
    fs.mv(staging, destination, recursive=True)
    return f"{url.rstrip('/')}/{document['id']}"


def _verify_remote(fs, location: str) -> dict:
    try:
        document = json.loads(fs.cat_file(f"{location}/artifact.json"))
    except FileNotFoundError as error:
        raise ArtifactError(f"no artifact.json at {location}") from error
    verify_files(document, lambda path: fs.cat_file(f"{location}/{path}"))
    return document


def pull(url: str, directory: str) -> str:
    """Download URL (an artifact, or a folder holding exactly one) into `directory`, verified."""
    import fsspec

    fs, location = fsspec.core.url_to_fs(url)
    location = location.rstrip("/")
    if not fs.exists(f"{location}/artifact.json"):
        if not fs.exists(location):
            raise ArtifactError(f"nothing at {url}")
        found = sorted(p for p in fs.ls(location, detail=False)
                       if not os.path.basename(p).startswith(".") and fs.exists(f"{p}/artifact.json"))
        if len(found) != 1:
            listing = ", ".join(os.path.basename(p) for p in found) or "none"
            raise ArtifactError(f"{url} holds {len(found)} artifacts ({listing}); pull URL/ID")
        location = found[0].rstrip("/")
    document = _verify_remote(fs, location)
    directory = os.path.abspath(directory)
    if os.path.exists(os.path.join(directory, "artifact.json")):
        if verify_artifact(directory)["id"] == document["id"]:
            return directory
        raise ArtifactError(f"{directory} already holds another artifact; choose an empty directory")
    tmp = f"{directory}.tmp-{uuid.uuid4().hex}"
    for path in [*document["files"], "artifact.json"]:
        os.makedirs(os.path.dirname(os.path.join(tmp, path)), exist_ok=True)
        fs.get_file(f"{location}/{path}", os.path.join(tmp, path))
    try:
        verify_artifact(tmp)
    except ArtifactError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.rename(tmp, directory)
    return directory
