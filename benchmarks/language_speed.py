"""Language detection: langdetect's own detector against ours
(transforms/langdetect_fast.py) on the same texts, in one process, in turns
in the same run; and the memory and time each takes to load its profiles,
each in a fresh process.

The texts are what the language stage reads (title, summary and content,
transforms/language.py `language_text`) of every story of a generated
corpus (benchmarks/corpus.py, several languages) and of the real news feeds
of ../shared/corpora/realfeeds when present. Both detectors must give every
text the same answer, probabilities included, or no figure is reported.
Ours starts each timed round with no word's n-grams remembered.

    python -m benchmarks.language_speed [--entries 2000] [--rounds 5] [--write]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from benchmarks.parse_speed import REALFEEDS, best_of_turns
from transforms.langdetect_fast import FastDetector
from transforms.language import MAX_CHARS, language_text

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "language_speed.json"
COMMAND = "python -m benchmarks.language_speed --write"

# Run in a fresh interpreter: what loading the profiles adds to a process
# that has already imported what a worker imports.
_LOAD = """
import json, time
import numpy, langdetect.detector, transforms.langdetect_fast
def rss(field="VmRSS"):   # VmHWM: this process's peak (ru_maxrss survives exec)
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) * 1024
before, start = rss(), time.process_time()
if {langdetect!r}:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    detector = DetectorFactory(); detector.load_profile(PROFILES_DIRECTORY)
else:
    detector = transforms.langdetect_fast.FastDetector()
seconds = time.process_time() - start
print(json.dumps({{"load_s": seconds, "added_mb": (rss() - before) / 1e6,
                  "peak_added_mb": (rss("VmHWM") - before) / 1e6}}))
"""


def generated_texts(entries: int) -> List[str]:
    from benchmarks import corpus
    from benchmarks.run import TOPICS
    from pipeline.config import load_topic_definitions
    from tests.support.fetched import fetched
    from transforms.parse import parse_fetch

    documents, _ = corpus.build(corpus.CorpusSpec(entries=entries), load_topic_definitions(str(TOPICS)))
    return [language_text(s) for _, body in documents for s in parse_fetch(fetched(body)).stories]


def realfeed_texts() -> List[str]:
    from tests.support.fetched import fetched
    from transforms.parse import parse_fetch

    paths = sorted(p for p in REALFEEDS.iterdir() if p.suffix in (".xml", ".rdf", ".atom", ".rss"))
    return [language_text(s) for p in paths for s in parse_fetch(fetched(p.read_bytes())).stories]


def _answers(detect, texts: List[str]) -> list:
    from langdetect.lang_detect_exception import LangDetectException

    out = []
    for text in texts:
        try:
            out.append([(language.lang, language.prob) for language in detect(text)])
        except LangDetectException:
            out.append(None)
    return out


def _langdetect(factory):
    def detect(text):
        detector = factory.create()
        detector.append(text)
        return detector.get_probabilities()
    return detect


def load_cost(langdetect: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", _LOAD.format(langdetect=langdetect)], cwd=str(ROOT),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_texts(texts: List[str], rounds: int, factory, fast: FastDetector) -> dict:
    reference, ours = _langdetect(factory), fast.probabilities
    # A fast wrong answer is not a result.
    if _answers(reference, texts) != _answers(ours, texts):
        raise SystemExit("language_speed: the detectors disagree; no figure reported")

    def ours_from_cold():   # each round starts with no word remembered, as a fresh worker does
        fast.forget_words()
        return _answers(ours, texts)

    slow_s, fast_s = best_of_turns(rounds, lambda: _answers(reference, texts), ours_from_cold)
    return {"texts": len(texts), "mean_chars": sum(map(len, texts)) / len(texts),
            "langdetect_ms": slow_s / len(texts) * 1e3, "fast_ms": fast_s / len(texts) * 1e3,
            "speedup": slow_s / fast_s}


def measure(entries: int = 2000, rounds: int = 5) -> dict:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    fast = FastDetector(seed=0)
    corpora: Dict[str, dict] = {"generated": measure_texts(generated_texts(entries), rounds, factory, fast)}
    if REALFEEDS.is_dir():
        corpora["realfeeds"] = measure_texts(realfeed_texts(), rounds, factory, fast)
    else:
        corpora["realfeeds"] = {"skipped": f"corpus not found: {REALFEEDS}"}
    return {"entries": entries, "rounds": rounds, "max_chars": MAX_CHARS, "corpora": corpora,
            "load": {"langdetect": load_cost(True), "fast": load_cost(False)}, "command": COMMAND}


def describe(r: dict) -> List[str]:
    lines = []
    for name, c in r["corpora"].items():
        lines.append(f"{name}: skipped: {c['skipped']}" if "skipped" in c else
                     f"{name}: {c['texts']:,} texts of {c['mean_chars']:,.0f} characters on average: "
                     f"langdetect {c['langdetect_ms']:.2f} ms a text, ours {c['fast_ms']:.2f} ms "
                     f"({c['speedup']:.1f}x), the same answers")
    slow, fast = r["load"]["langdetect"], r["load"]["fast"]
    lines.append(f"profiles loaded: langdetect +{slow['added_mb']:,.0f} MB (peak +{slow['peak_added_mb']:,.0f}) "
                 f"in {slow['load_s']:.2f} s; ours +{fast['added_mb']:,.0f} MB (peak +{fast['peak_added_mb']:,.0f}) "
                 f"in {fast['load_s']:.2f} s")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000, help="entries of the generated corpus")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"write the result to {RESULT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    result = measure(args.entries, args.rounds)
    print("\n".join(describe(result)))
    if args.write:
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
