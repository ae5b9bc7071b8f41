"""Keyword screens used to build and label the evaluation set.

They are NOT topic rules and are not meant to be good ones: they decide which
items a person read closely (BROAD: generous, anything that could possibly be
about North Korea) and which extra items were added to the random sample so
that the set holds enough stories about North Korea and enough look-alike
traps (ENRICH). LABELLING.md explains how both were used.
"""
from __future__ import annotations

import re
import unicodedata

# Korean: every 북 (북한, 북미, 경북, 북부 …), 조선 (조선일보, 조선업 …), 핵 except
# 핵심 ("core"), names, places, institutions, the usual topics.
_KO_BROAD = re.compile(
    r"북|北|조선|朝鮮|평양|김정은|김여정|김주애|김일성|김정일|최선희|탈북|핵(?!심)|미사일|노동당|인민군"
    r"|통일|한반도|DMZ|비무장|휴전|NLL|개성|금강산|정찰위성|ICBM|SLBM|파병|귀순|납북|이산가족|주체"
    r"|North Korea|DPRK|Pyongyang|NK", re.I)
# Japanese: every 北 (北海道, 東北, 北京 …), 朝鮮, 核, キム, the usual topics.
_JA_BROAD = re.compile(
    r"北|朝鮮|平壌|ピョンヤン|金正恩|金与正|キム|ミサイル|弾道|拉致|核|労働党|脱北|半島|日朝|南北|板門店"
    r"|ICBM|DPRK|North Korea", re.I)
# Chinese: 北 is "north" in hundreds of place names; those common compounds are
# removed first, any other 北 (北韩/北韓 included) still counts.
_ZH_NORTH_WORDS = re.compile(
    r"台北|臺北|新北|东北|東北|西北|华北|華北|河北|湖北|北京|北部|北方|北美|北欧|北歐|北极|北極|北约|北約"
    r"|北海道|北區|北区|北上|北市|北非|北爱|北愛|北马|北馬|北斗|北大|北投|北港|北門|北门|北屯|北宋|北周|北魏")
_ZH_BROAD = re.compile(
    r"北|朝鲜|朝鮮|平壤|金正恩|金与正|金與正|导弹|導彈|飞弹|飛彈|核|劳动党|勞動黨|脱北|脫北|半岛|半島"
    r"|韩朝|韓朝|朝韩|朝韓|朝中社|板门店|板門店|弹道|彈道|南北|ICBM|DPRK|North Korea", re.I)

# Enrichment: the North Korea words ("nk") and the look-alikes named in
# issue 18 ("trap"); three quarters of the extra items come from the first.
_ENRICH = {
    "ko": {
        "nk": re.compile(r"북한|北|김정은|김여정|평양|탈북|남북|대북|북핵|조선중앙|노동신문|월북|귀순|통일부|미사일"),
        "trap": re.compile(r"태평양|북미|북송|조선일보|조선업|조선소|동서남북|북부|북극|북유럽|남북미"),
    },
    "ja": {
        "nk": re.compile(r"北朝鮮|北[、,・]|金正恩|金与正|平壌|拉致|ミサイル|朝鮮|脱北"),
        "trap": re.compile(r"北海道|北京|東北|北陸|北米|北欧|北部|北九州|北極|核"),
    },
    "zh": {
        "nk": re.compile(r"朝鲜|朝鮮|北韩|北韓|金正恩|金与正|金與正|平壤|导弹|導彈|飞弹|飛彈|核武|脱北|脫北|朝中社"
                         r"|劳动党|勞動黨"),
        "trap": re.compile(r"北京|台北|臺北|东北|東北|北部|北约|北約|半岛|半島|北海道"),
    },
}


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def broad(lang: str, text: str) -> bool:
    text = _norm(text)
    if lang == "ko":
        return bool(_KO_BROAD.search(text))
    if lang == "ja":
        return bool(_JA_BROAD.search(text))
    if lang == "zh":
        return bool(_ZH_BROAD.search(_ZH_NORTH_WORDS.sub("", text)))
    raise ValueError(lang)


def enrich(lang: str, text: str) -> str:
    """"nk", "trap" or "" (an item that matches both counts as "nk")."""
    text = _norm(text)
    for kind in ("nk", "trap"):
        if _ENRICH[lang][kind].search(text):
            return kind
    return ""
