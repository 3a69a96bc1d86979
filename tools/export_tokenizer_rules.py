"""Write spaCy's English tokenizer rules to domain/en_tokenizer_rules.json.

`domain/en_tokenizer.py` runs spaCy's tokenizer algorithm on these rules without importing
spaCy (whose import and `blank("en")` cost Enrich ≈ 0.7 s of cold start). Re-run after a spaCy
upgrade; tests/unit/test_en_tokenizer.py fails while the file and the installed spaCy differ.

    .venv/bin/python tools/export_tokenizer_rules.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "layers/supportlens/python/supportlens/domain/en_tokenizer_rules.json"


def spacy_rules() -> dict[str, Any]:
    """The rules of the installed spaCy's `blank("en")` tokenizer, as plain JSON values."""
    import spacy
    from spacy.symbols import ORTH

    tok = spacy.blank("en").tokenizer
    if tok.token_match is not None:  # the port handles the English defaults (no token_match)
        raise SystemExit("spaCy's English tokenizer has a token_match now: extend domain/en_tokenizer.py")

    def pattern(bound: Any) -> dict[str, Any]:
        return {"pattern": bound.__self__.pattern, "flags": int(bound.__self__.flags)}

    return {
        "spacy_version": spacy.__version__,
        "faster_heuristics": bool(tok.faster_heuristics),
        "prefix": pattern(tok.prefix_search),
        "suffix": pattern(tok.suffix_search),
        "infix": pattern(tok.infix_finditer),
        "url": pattern(tok.url_match),
        "specials": {text: [piece[ORTH] for piece in pieces] for text, pieces in sorted(tok.rules.items())},
    }


def main() -> int:
    OUT.write_text(json.dumps(spacy_rules(), ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
