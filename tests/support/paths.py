"""Where the tests find the project and the shared corpora, wherever they live in tests/."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
# Real test material beside the checkout (../shared); tests that use it skip when it is absent.
CORPORA = ROOT.parent / "shared" / "corpora"
