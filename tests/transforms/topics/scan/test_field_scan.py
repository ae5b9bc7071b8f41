"""The FieldScan contract (transforms/topics/scan/__init__.py), one suite run
on each scan: the same texts, the same expected answers.

A scan's places are its own (tuples in the pure-Python scan, offsets in the
Hyperscan ones), so the expectations are what the matcher takes from them:
the keys found, the order of occurrences, offsets in the stored text and
words between occurrences. The two scans' agreement on whole stories is
tested in test_scans.py."""
import inspect
from dataclasses import dataclass
from typing import Dict, List, Tuple

import pytest

from transforms.topics import Topic, TopicMatcher
from transforms.topics.query import Key
from transforms.topics.scan import FieldScan, FieldScanner, hyperscan_scan
from transforms.topics.scan.python_scan import PythonFieldScan, PythonTermIndex


def K(*pieces: str, folded: bool = False) -> Key:
    return Key(folded, pieces)


@dataclass(frozen=True)
class Case:
    text: str
    # key -> where its occurrences start in `text` (offsets, as `matches`
    # reports them); [] for a key that is not in the text
    starts: Dict[Key, List[int]]
    # (a, b, n): n words between the end of a's first occurrence and the
    # start of b's last
    between: Tuple[Tuple[Key, Key, int], ...] = ()
    # False: the Hyperscan scan declines the field (FieldNotScannable) and
    # FieldScanner gives it to the pure-Python scan
    hyperscan_reads: bool = True


CASES = {
    "latin1": Case(
        "Seoul: North Korea's missile test, then a launch.",
        {K("north", "korea"): [7], K("korea"): [13], K("missile"): [21], K("test*"): [29],
         K("launch"): [42], K("seoul"): [0], K("rocket"): []},
        ((K("missile"), K("test*"), 0), (K("north", "korea"), K("missile"), 1),  # the "s" of Korea's
         (K("north", "korea"), K("launch"), 5), (K("seoul"), K("launch"), 7))),
    "latin1_accents_folded": Case(
        "La Corée du Nord et PJÖNGJANG",
        {K("coree", folded=True): [3], K("corée"): [3], K("coree"): [], K("nord*", folded=True): [12],
         K("pjongjang", folded=True): [20]},
        ((K("corée"), K("pjongjang", folded=True), 3),)),
    "utf8_accents": Case(  # Ł, „ and ” are not Latin-1
        "Wizyta w Łodzi — „Kraków” i Łódź, Łódź.",
        {K("łódź"): [28, 34], K("lodz", folded=True): [28, 34], K("krakow", folded=True): [18],
         K("w", "lodzi", folded=True): [7], K("lodz"): []},
        ((K("w", "lodzi", folded=True), K("krakow", folded=True), 0),
         (K("krakow", folded=True), K("łódź"), 2), (K("łódź"), K("łódź"), 0))),
    "korean": Case(
        "북한은 오늘 미사일을 발사했다. 김정은, 위원장은",
        {K("북한"): [0], K("미사일"): [7], K("발사"): [12], K("김정은", "위원장"): [18], K("남한"): []},
        ((K("북한"), K("발사"), 2), (K("미사일"), K("발사"), 0), (K("북한"), K("김정은", "위원장"), 3))),
    "japanese": Case(  # one run of unspaced text: a single word
        "北朝鮮は弾道ミサイルを発射した",
        {K("北朝鮮"): [0], K("ミサイル"): [6], K("発射"): [11], K("韓国"): []},
        ((K("北朝鮮"), K("発射"), 0), (K("ミサイル"), K("発射"), 0))),
    "word_edges": Case(  # keys with word edges (<북>): unspaced words that start or end a run
        "북, 노트북과 北京 北、발사",
        {K("<북>"): [0], K("북>"): [0], K("북"): [0, 5], K("<北"): [8, 11], K("<北>"): [11],
         K("北>"): [11], K("<발사>"): [13], K("<노트>"): []},
        ((K("<북>"), K("<北>"), 2), (K("<北"), K("<발사>"), 1), (K("<北>"), K("<발사>"), 0))),
    "astral": Case(
        "😀 North Korea 😀 missile launch 𝐀𝐁",
        {K("north", "korea"): [2], K("missile"): [16], K("launch"): [24], K("ab"): [31]},
        ((K("north", "korea"), K("missile"), 0), (K("north", "korea"), K("ab"), 2)),
        hyperscan_reads=False),
    "joined_combining_marks": Case(  # e + U+0301 and o + U+0308 normalise to é and ö
        "Cafe\u0301 Ko\u0308rea, North Korea",
        {K("café"): [0], K("korea"): [20], K("korea", folded=True): [6, 20], K("north", "korea"): [14]},
        ((K("café"), K("north", "korea"), 1), (K("korea", folded=True), K("korea"), 1))),
    "letter_folding_to_two": Case(  # æ folds to "ae"
        "Ærø and Corée",
        {K("aero", folded=True): [0], K("coree", folded=True): [8]},
        ((K("aero", folded=True), K("coree", folded=True), 1),),
        hyperscan_reads=False),
}


@pytest.fixture(params=["python", "hyperscan"])
def engine(request) -> str:
    """Each test once with each scan. On this project's platforms hyperscan
    is installed, so a missing one fails rather than skips."""
    return request.param


@pytest.fixture
def scan_field(engine):
    """(keys, text) -> that scan's FieldScan of the text, or None where the
    Hyperscan scan declines the field."""
    if engine == "python":
        return lambda keys, text: PythonFieldScan(PythonTermIndex(keys), text)

    def hyperscan(keys, text):
        try:
            return hyperscan_scan.HyperscanIndex(keys).field_scan(text)
        except hyperscan_scan.FieldNotScannable:
            return None

    return hyperscan


@pytest.fixture(params=list(CASES.values()), ids=list(CASES))
def case(request) -> Case:
    return request.param


@pytest.fixture
def scan(scan_field, case) -> FieldScan:
    result = scan_field(list(case.starts), case.text)
    if result is None:
        assert not case.hyperscan_reads
        pytest.skip("the Hyperscan scan declines this field; the pure-Python scan reads it")
    return result


def test_the_hyperscan_scan_declines_only_the_fields_it_cannot_read(case):
    index = hyperscan_scan.HyperscanIndex(list(case.starts))
    if case.hyperscan_reads:
        index.field_scan(case.text)
    else:
        with pytest.raises(hyperscan_scan.FieldNotScannable):
            index.field_scan(case.text)


def test_found_is_the_keys_with_an_occurrence(scan, case):
    assert scan.found == {key for key, starts in case.starts.items() if starts}


def test_occurrences_are_sorted_start_end_places_and_none_for_a_key_not_found(scan, case):
    for key, starts in case.starts.items():
        occurrences = scan.occurrences(key)
        assert len(occurrences) == len(starts), key
        assert occurrences == sorted(occurrences), key
        assert all(start < end for start, end in occurrences), key


def test_an_occurrence_ends_where_a_later_one_may_start(scan_field):
    # "Korea" inside "North Korea" overlaps it (ATLEAST counts the place
    # once); "missile" after it does not.
    scan = scan_field([K("north", "korea"), K("korea"), K("missile")], "North Korea missile")
    [(_, phrase_end)] = scan.occurrences(K("north", "korea"))
    [(korea_start, korea_end)] = scan.occurrences(K("korea"))
    [(missile_start, _)] = scan.occurrences(K("missile"))
    assert korea_start < phrase_end and korea_end == phrase_end
    assert phrase_end <= missile_start


def test_first_start_is_the_start_of_the_first_occurrence(scan):
    for key in scan.found:
        assert scan.first_start(key) == scan.occurrences(key)[0][0], key


def test_original_offset_is_where_an_occurrence_starts_in_the_stored_text(scan, case):
    for key, starts in case.starts.items():
        assert [scan.original_offset(start) for start, _ in scan.occurrences(key)] == starts, key


def test_words_between_counts_the_words_between_two_occurrences(scan, case):
    for a, b, expected in case.between:
        end, start = scan.occurrences(a)[0][1], scan.occurrences(b)[-1][0]
        assert scan.words_between(end, start, 100) == expected, (a, b)
        if expected:  # past the limit, any number above it
            assert scan.words_between(end, start, expected - 1) > expected - 1, (a, b)


def test_past_the_limit_a_scan_may_stop_counting(scan_field):
    text = "missile " + "word " * 500 + "test"
    scan = scan_field([K("missile"), K("test")], text)
    end, start = scan.occurrences(K("missile"))[0][1], scan.occurrences(K("test"))[0][0]
    assert scan.words_between(end, start, 1000) == 500
    assert scan.words_between(end, start, 3) > 3


# ------------------------------------------------------------ the Protocol

CONTRACT = {"found", "occurrences", "first_start", "words_between", "original_offset"}
SCAN_CLASSES = [PythonFieldScan, hyperscan_scan.Latin1FieldScan, hyperscan_scan.Utf8FieldScan]


def test_the_contract_is_what_the_matcher_uses(engine, monkeypatch):
    members = {name for name in vars(FieldScan) if not name.startswith("_")}
    assert members | set(FieldScan.__annotations__) == CONTRACT

    used = set()

    class Watched:
        """A field scan that notes which of its members the matcher reads."""

        def __init__(self, scan):
            self._scan = scan

        def __getattr__(self, name):
            used.add(name)
            return getattr(self._scan, name)

    real = FieldScanner.scan
    monkeypatch.setattr(FieldScanner, "scan", lambda self, text: Watched(real(self, text)))
    matcher = TopicMatcher([Topic("near", "missile NEAR/3 test"), Topic("count", "ATLEAST/2 korea"),
                            Topic("term", '"North Korea"')], engine=engine)
    assert [name for name, _ in matcher.match("North Korea: a missile test", "", "Korea")] == [
        "count", "near", "term"]
    assert used == CONTRACT


@pytest.mark.parametrize("cls", SCAN_CLASSES, ids=lambda c: c.__name__)
def test_every_scan_class_has_the_protocol_members_with_its_signatures(cls):
    for name in CONTRACT:
        assert hasattr(cls, name), name  # `found` is a slot
        expected = getattr(FieldScan, name, None)
        if callable(expected):
            assert list(inspect.signature(getattr(cls, name)).parameters) == list(
                inspect.signature(expected).parameters), name


@pytest.mark.parametrize("text", ["North Korea", "북한 Korea"])
def test_every_scan_is_a_field_scan(scan_field, text):
    assert isinstance(scan_field([K("korea")], text), FieldScan)


def test_the_scanner_gives_each_field_to_the_scan_that_reads_it():
    scanner = FieldScanner({K("korea"), K("aero", folded=True)}, "hyperscan")
    assert type(scanner.scan("North Korea")) is hyperscan_scan.Latin1FieldScan
    assert type(scanner.scan("북한 Korea")) is hyperscan_scan.Utf8FieldScan
    assert type(scanner.scan("😀 Korea")) is PythonFieldScan  # declined: beyond U+FFFF
    assert type(scanner.scan("Ærø Korea")) is PythonFieldScan  # declined: æ folds to two letters
    python = FieldScanner({K("korea")}, "python")
    assert python.engine == "python" and type(python.scan("North Korea")) is PythonFieldScan
