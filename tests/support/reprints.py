"""Made-up stories and the reprint edit model for the cluster tests
(tests/transforms/test_sketch.py, test_cluster.py, tests/pipeline/test_clusters.py).
Every text here is made up for these tests."""
import random

import numpy as np

from transforms.sketch import NUM_PERM, estimate, is_reprint, shingles, sketch

# -- made-up stories ---------------------------------------------------------
SHIP = (
    "The harbour authority of Vellmar said on Tuesday that the cargo ship Northern Lark ran aground "
    "on a sandbank two miles off the coast after losing power during a gale on Monday night. All "
    "nineteen crew members were taken off by lifeboat before dawn, and none was hurt, a spokeswoman "
    "for the coastguard said. The vessel, which flies the flag of Malta, was carrying forty thousand "
    "tonnes of wheat from Odessa to Rotterdam. Salvage teams were waiting for calmer weather before "
    "trying to pull it free at high tide on Thursday. Divers who inspected the hull found a crack near "
    "the bow, and engineers were pumping water out of two flooded holds. Environmental groups warned "
    "that fuel oil could leak into a nearby bird sanctuary if the hull broke apart. The owner, Baltic "
    "Bulk Carriers, said it was cooperating with the investigation and would pay for the clean-up. "
    "Port traffic was not affected, the authority added, although fishing boats were told to keep a "
    "distance of half a mile from the stranded ship until further notice.")
# The same event, the same names and facts, written by another outlet's own reporter.
SHIP_OWN_REPORT = (
    "A Maltese-flagged bulk carrier, the Northern Lark, is stuck on a sandbank near Vellmar after a "
    "storm knocked out its engines late on Monday, officials said. Lifeboat crews rescued its nineteen "
    "sailors in the early hours of Tuesday; the coastguard reported no injuries. The ship had loaded "
    "forty thousand tonnes of wheat in Odessa and was bound for Rotterdam. Baltic Bulk Carriers, which "
    "owns the ship, said salvage crews hoped to refloat it on Thursday's high tide. A crack was found "
    "near the bow and two holds have taken on water. Conservationists fear an oil spill could reach "
    "the bird sanctuary close by, and fishermen have been ordered to stay away from the wreck.")
MUSEUM = (
    "Thieves broke into the Halvard Museum of Fine Art in Esterby early on Sunday and escaped with "
    "three small landscape paintings by the nineteenth-century painter Agnes Rool, police said. The "
    "burglars cut through a skylight above the east gallery and disabled a motion sensor, according to "
    "a statement from the regional police. A night guard noticed the empty frames during his four "
    "o'clock round and raised the alarm, but the thieves had already gone. The paintings, which show "
    "the lakes and forests near Esterby, were insured for a combined eleven million crowns. The museum "
    "will stay closed until Wednesday while forensic teams examine the building. Its director, Tomas "
    "Brenning, called the theft a painful loss for the town and appealed to anyone who had seen a grey "
    "van parked near the museum on Saturday night to contact the police. Investigators are checking "
    "footage from cameras on nearby streets and have questioned two former employees.")
MUSEUM_OWN_REPORT = (
    "Three landscapes by Agnes Rool were stolen from Esterby's Halvard Museum of Fine Art overnight "
    "into Sunday. According to police, the intruders got in through a roof window over the east "
    "gallery after switching off an alarm sensor. The theft was discovered at around four in the "
    "morning by a guard who found the frames empty. The works, depicting the countryside around "
    "Esterby, carry insurance worth eleven million crowns in total. Director Tomas Brenning said the "
    "town had lost part of its heritage; he asked witnesses who saw a grey van near the building on "
    "Saturday evening to come forward. The museum is closed until Wednesday.")
# Hangul, Japanese and Chinese: no spaces between words (or, in Korean, not reliably).
KOREAN = (
    "해양경찰청은 화요일 새벽 남해안 거문도 인근 해상에서 화물선 한 척이 강풍에 떠밀려 암초에 걸렸다고 밝혔다. "
    "선원 열두 명은 모두 구조됐으며 다친 사람은 없는 것으로 확인됐다. 해경은 선박에서 기름이 새어 나오지 "
    "않도록 방제선 세 척을 현장에 보냈다. 선박 회사는 날씨가 좋아지는 대로 예인선을 이용해 배를 끌어낼 "
    "계획이라고 설명했다. 인근 양식장 어민들은 기름 유출 가능성을 걱정하며 당국의 신속한 대응을 요구했다. "
    "해경은 정확한 사고 원인을 조사하고 있다.")
KOREAN_OTHER = (
    "서울시는 다음 달부터 시내버스 첫차 운행 시간을 삼십 분 앞당긴다고 수요일 발표했다. 새벽에 출근하는 "
    "청소 노동자와 경비원들의 요청을 받아들인 조치다. 시는 노선 스무 곳에 버스 마흔 대를 추가로 "
    "투입하고 정류장 안내 화면도 새로 바꿀 예정이다. 시민들은 대체로 환영했지만 일부 운전기사들은 "
    "근무 시간이 길어진다며 우려를 나타냈다. 서울시는 석 달 동안 시범 운영한 뒤 확대 여부를 결정하기로 했다.")
JAPANESE = (
    "気象庁は火曜日の朝、九州南部の沖合で震度四の地震が観測されたと発表した。震源の深さは約四十キロで、"
    "津波の心配はないという。鹿児島県内では一時、新幹線が運転を見合わせたが、点検の結果、異常は見つからず、"
    "およそ一時間後に運転を再開した。県によると、けが人や建物の被害の報告は入っていない。気象庁は今後一週間ほどは"
    "同じ程度の揺れに注意するよう呼びかけている。")
CHINESE = (
    "当地气象部门星期二表示，受强冷空气影响，北部山区未来三天将出现大范围降雪，部分路段积雪可能超过二十厘米。"
    "交通部门已提前在高速公路沿线部署除雪车辆，并提醒司机减速慢行。铁路方面表示，部分列车可能晚点，"
    "旅客出行前应查询最新信息。教育部门要求山区学校根据天气情况灵活安排课程，必要时可以停课。")

# One outlet's footer, 40 words, under every story it runs.
FOOTER = ("This article was produced by the Coastal Times newsroom and may not be republished. Sign up "
          "for our morning newsletter to get the top stories of the day in your inbox, and follow "
          "us on social media for breaking news.")

_SUBJECTS = ["the city council", "a regional court", "the national weather office", "a hospital",
             "the transport ministry", "local farmers", "a group of students", "the state railway",
             "the central bank", "a museum", "firefighters", "the football club", "a chemical plant",
             "the teachers' union", "a small bakery", "the mayor", "astronomers", "a ferry operator",
             "the water company", "the police"]
_VERBS = ["approved", "rejected", "announced", "postponed", "investigated", "celebrated", "criticised",
          "reopened", "sold", "measured", "delayed", "repaired", "cancelled", "opened", "questioned"]
_OBJECTS = ["a plan for a new bridge", "higher parking fees", "the record rainfall", "a night shift for nurses",
            "two damaged locomotives", "an old painting of the harbour", "its annual budget", "a stolen bicycle",
            "the rise in bread prices", "a comet near Jupiter", "the summer timetable", "a leak in the main pipe",
            "a strike over wages", "plans to close a school", "the winning goal", "a warehouse fire",
            "a rare orchid", "the interest rate", "a festival of folk music", "cracks in the town hall"]
_WHEN = ["on Monday", "on Tuesday", "last week", "today", "on Friday", "after a debate", "in secret",
         "despite protests", "again", "without warning"]
_SYLLABLES = ["ka", "lo", "mi", "ster", "vin", "dor", "ha", "ul", "ren", "bas", "tor", "ne", "qui", "fal", "mo"]


def unrelated_stories(n, seed=0):
    """`n` short local news items (~20-30 words) about different things in
    different (made-up) towns: no two are copies of each other."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        place = (_SYLLABLES[i % 15] + _SYLLABLES[i // 15 % 15] + _SYLLABLES[(i // 225 + seed) % 15]).capitalize()
        words = []
        while len(words) < 14:
            words += (f"{rng.choice(_SUBJECTS).capitalize()} of {place} {rng.choice(_VERBS)} "
                      f"{rng.choice(_OBJECTS)} {rng.choice(_WHEN)}.").split()
        words += f"{rng.choice(_SYLLABLES).capitalize()}{rng.choice(_SYLLABLES)} {place}son said " \
                 f"{rng.randint(3, 900)} took part.".split()
        out.append(" ".join(words))
    return out


def reprint(text, keep=0.6, dateline="VELLMAR, Nov. 4 (Coastal Times) -",
            footer="Copyright 2026 Coastal Times. All rights reserved. Read more at coastaltimes.example.",
            edits=((12, "sandbar"), (60, "boat"), (100, "harbour"))):
    """Another outlet's copy of `text` (the edit model): a dateline in front,
    the bottom cut to `keep` of the words, a few words changed, its own footer
    behind. (Its new headline is not part of the body.)"""
    words = text.split()[:max(1, round(len(text.split()) * keep))]
    for position, word in edits:
        if position < len(words):
            words[position] = word
    return " ".join(filter(None, [dateline, " ".join(words), footer]))


def lead(text, sentences=2):
    """The first sentences of a text: what a summary-only feed carries."""
    return ". ".join(text.split(". ")[:sentences]) + "."


def alone(text):
    return sketch(shingles(text))


def linked_pairs(sketches):
    """The pairs (i, j) of sketches that are the same story (numpy: many pairs)."""
    present = [i for i, s in enumerate(sketches) if s is not None]
    if len(present) < 2:
        return []
    values = np.stack([sketches[i].values() for i in present])
    sizes = [sketches[i].shingles for i in present]
    matches = (values[:, None, :] == values[None, :, :]).sum(axis=2)
    pairs = []
    for a, b in zip(*np.triu_indices(len(present), k=1)):
        if matches[a, b] and is_reprint(*estimate(matches[a, b] / NUM_PERM, sizes[a], sizes[b])):
            pairs.append((present[a], present[b]))
    return pairs
