"""Topic rules (transforms/topics/rules.py): the version hash of the rules in
force, and the bounds on what references expand to. Errors in rules files
are tested with the files (tests/pipeline/test_config.py)."""
import pytest

from transforms.topics import Topic, TopicError, TopicMatcher, compile_rules, topics_version

TOPICS = [
    ("dprk", 'DPRK OR "North Korea" OR 북한 OR 北朝鮮'),
    ("missiles", "missile* OR 미사일 OR ミサイル"),
]


def version(topics):
    return topics_version(compile_rules(topics))


class TestVersion:
    def test_same_rules_same_version(self):
        assert version(TOPICS) == version(list(reversed(TOPICS))) == TopicMatcher(TOPICS).version
        assert len(version(TOPICS)) == 16

    def test_layout_of_a_query_does_not_count(self):
        assert version([("a", "x OR  (y)")]) == version([("a", "x OR y")])

    @pytest.mark.parametrize("changed", [
        [("dprk", "DPRK"), TOPICS[1]],                          # a query
        [("north_korea", TOPICS[0][1]), TOPICS[1]],             # a name
        [Topic("dprk", TOPICS[0][1], fold_accents=True), TOPICS[1]],  # accent folding
        TOPICS[:1],                                             # a topic less
    ])
    def test_any_rule_change_changes_it(self, changed):
        assert version(changed) != version(TOPICS)


def test_a_long_chain_of_references_is_a_clear_error():
    chain = [("t0", "w0")] + [(f"t{k}", f"topic:t{k - 1} OR w{k}") for k in range(1, 1500)]
    with pytest.raises(TopicError, match=r"nested 20[0-9] levels deep once topic: references are "
                                         r"expanded; the limit is 200$"):
        compile_rules(chain)
