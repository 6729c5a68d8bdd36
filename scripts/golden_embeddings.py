#!/usr/bin/env python3
"""Reference embeddings for tests/embed.rs, computed with sentence-transformers itself.

docqa's candle BERT embedder (src/embed/mod.rs) must reproduce all-MiniLM-L6-v2 as the
reference implementation runs it: BERT, attention-mask mean pooling, L2 normalisation,
inputs truncated to 256 tokens. This script assembles a local sentence-transformers model
folder from docqa's own model cache (the same sha256-verified model.safetensors,
config.json and tokenizer.json the Rust side loads), adds the small module configuration
files that all-MiniLM-L6-v2 publishes (written out below), embeds a fixed set of texts and
writes tests/golden/minilm_embeddings.json.

Nothing is fetched at run time. Setup, in a throwaway venv:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers
    DOCQA_CACHE=/tmp/dq-cache ./target/release/docqa models pull all-minilm-l6-v2
    DOCQA_CACHE=/tmp/dq-cache /tmp/st/bin/python scripts/golden_embeddings.py

Options: --model-dir DIR (a folder holding the three cached files; default
$DOCQA_CACHE/models/all-minilm-l6-v2), --out FILE.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
MODEL = "all-minilm-l6-v2"
MAX_SEQ_LENGTH = 256

# The files docqa's model manifest (models/all-minilm-l6-v2.toml) pins.
CACHED_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}

# all-MiniLM-L6-v2's published sentence-transformers configuration:
# Transformer -> mean Pooling -> Normalize, max_seq_length 256.
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {
        "idx": 2,
        "name": "2",
        "path": "2_Normalize",
        "type": "sentence_transformers.models.Normalize",
    },
]
SENTENCE_BERT_CONFIG = {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False}
POOLING_CONFIG = {
    "word_embedding_dimension": 384,
    "pooling_mode_cls_token": False,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}
TOKENIZER_CONFIG = {
    "do_lower_case": True,
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "model_max_length": 512,
    "do_basic_tokenize": True,
    "never_split": None,
    "tokenizer_class": "BertTokenizer",
}
SPECIAL_TOKENS_MAP = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def seed_text(name_prefix: str) -> str:
    (path,) = sorted((ROOT / "seeds").glob(name_prefix + "_*.txt"))
    return path.read_text(encoding="utf-8")


def texts() -> list:
    long_article = seed_text("000").strip()
    return [
        # English news sentences from the seeds corpus.
        "South Korea and the United States have agreed to develop cybersecurity cooperation "
        "through stages including regular cyber defense drills, South Korea\u2019s Defense "
        "Ministry said Thursday.",
        "The U.S. and South Korea have agreed to help one another develop technology to "
        "combat cyber threats, the two nations said on Monday.",
        "North Korea is widely believed to be behind the infamous hack on Sony Pictures, "
        "perceived as retaliation for \u201cThe Interview,\u201d a 2014 comedy.",
        # A short query.
        "cyber flag drill",
        # Punctuation and numbers.
        "Q3 2023: revenue rose 12.5% to $4,200,000 (vs. $3.73M) -- see p. 17, fig. 2b; "
        "ETA 09:45 UTC on 2024-07-17!?",
        # Korean (non-Latin script, mostly word pieces / [UNK] for this English vocabulary).
        "\ud55c\uad6d\uacfc \ubbf8\uad6d\uc740 \uc0ac\uc774\ubc84 \ubc29\uc5b4 \ud6c8\ub828\uc744 "
        "\uc815\ub840\ud654\ud558\uae30\ub85c \ud569\uc758\ud588\ub2e4.",
        # A paraphrase of the first sentence and an unrelated one (tests compare cosines).
        "Seoul and Washington will regularly hold joint cyber defence exercises.",
        "Knead the dough for ten minutes, then let it rise in a warm place until doubled.",
        # A whole seed article, far longer than 256 tokens: exercises truncation.
        long_article,
    ]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def assemble(model_dir: Path, folder: Path) -> None:
    for name, want in CACHED_FILES.items():
        src = model_dir / name
        got = sha256(src)
        if got != want:
            sys.exit(f"{src}: sha256 {got}, expected {want}")
        shutil.copyfile(src, folder / name)
    write_json(folder / "modules.json", MODULES)
    write_json(folder / "sentence_bert_config.json", SENTENCE_BERT_CONFIG)
    write_json(folder / "1_Pooling" / "config.json", POOLING_CONFIG)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS_MAP)


def main() -> None:
    cache = Path(os.environ.get("DOCQA_CACHE", Path.home() / ".cache" / "docqa"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=cache / "models" / MODEL)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/golden/minilm_embeddings.json")
    args = ap.parse_args()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    inputs = texts()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / MODEL
        folder.mkdir()
        assemble(args.model_dir, folder)
        model = SentenceTransformer(str(folder), device="cpu")
        model.eval()
        assert model.max_seq_length == MAX_SEQ_LENGTH, model.max_seq_length
        names = [type(m).__name__ for m in model]
        assert names == ["Transformer", "Pooling", "Normalize"], names

        # The long text must really be truncated, and nothing else.
        lengths = [int(n) for n in model.preprocess(inputs)["attention_mask"].sum(1)]
        full = [len(model.tokenizer(t, truncation=False)["input_ids"]) for t in inputs]
        assert full[-1] > MAX_SEQ_LENGTH and lengths[-1] == MAX_SEQ_LENGTH, (full, lengths)
        assert all(n <= MAX_SEQ_LENGTH for n in full[:-1]), full

        # One text at a time, so no padding is involved in the reference.
        with torch.no_grad():
            vecs = [
                model.encode([t], convert_to_numpy=True, normalize_embeddings=False)[0]
                for t in inputs
            ]

    for v in vecs:
        assert v.shape == (384,), v.shape
        assert abs(float((v * v).sum()) - 1.0) < 1e-5

    golden = {
        "model": "all-MiniLM-L6-v2",
        "reference": f"sentence-transformers {sentence_transformers.__version__} "
        f"(torch {torch.__version__.split('+')[0]}, CPU, float32)",
        "max_seq_length": MAX_SEQ_LENGTH,
        "token_counts": full,
        "texts": inputs,
        "embeddings": [[round(float(x), 6) for x in v] for v in vecs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(inputs)} texts, tokens {full}, {golden['reference']}")


if __name__ == "__main__":
    main()
