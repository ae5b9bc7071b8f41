"""The Korean, Japanese and Chinese terms of the North Korea rules (issue 18)
against headlines written for this test: every term finds a headline that
uses it, every trap of the issue (and every longer word the rules exclude)
is a headline the rules leave alone, in each scan of the matcher.

Measured quality on real headlines is benchmarks/topics_quality.py's job;
this is the specification, case by case.
"""
import pytest

from pipeline.config import load_topics
from transforms.topics import TopicMatcher, parse_query
from transforms.topics.query import Except, walk
from transforms.topics.text import is_unspaced
from tests.support.paths import SEEDS

RULES = SEEDS / "topics.yaml"

# Every test once with each scan of the matcher (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("matcher_engine")

# (headline, the dprk_mentions term it must be found by). Written for this
# test; none is copied from a publisher.
NAMES_NORTH_KOREA = [
    # Korean
    ("북향민 정착 지원금 인상", "북향민"),
    ("9·19 군사합의 복원 검토", "9·19 군사합의"),
    ("9·19 남북군사합의 일부 효력 정지", "9·19 남북군사합의"),
    ("정부, 9·19 합의 선제 복원", "9·19 합의"),
    ("야당, '9·19 복원' 비판", "9·19 복원"),
    ("9ㆍ19 군사합의 6년", "9ㆍ19 군사합의"),
    ("9ㆍ19 남북군사합의 전면 효력 정지", "9ㆍ19 남북군사합의"),
    ("9ㆍ19 합의 파기 선언", "9ㆍ19 합의"),
    ("9ㆍ19 복원 논란", "9ㆍ19 복원"),
    ("북한, 동해상으로 단거리 탄도미사일 발사", "북한"),
    ("북, 서해상으로 순항미사일 여러 발 쐈다", "<북>"),
    ("남과 북, 다시 대화 테이블에", "<북>"),
    ("북·중 국경 무역 재개", "<북>"),
    ("정부 \"북측에 깊은 유감\"", "<북측"),
    ("北 김여정 \"한미 훈련 중단하라\"", "<北>"),
    ("美 \"北 도발 규탄\"…안보리 소집 요청", "<北>"),
    ("北이 쏜 미사일, 배타적경제수역 밖 낙하", "<北이"),
    ("北은 왜 지금 도발하나", "<北은"),
    ("北의 핵 위협 커져", "<北의"),
    ("한미, 北에 강력 경고", "<北에"),
    ("北과 러시아 군사협력 심화", "<北과"),
    ("北도 반발 \"주권 침해\"", "<北도"),
    ("北엔 무슨 일이…평양 시내 정전", "<北엔"),
    ("北무인기 사건 수사 확대", "<北무인기"),
    ("北해커, 가상자산 거래소 또 노려", "<北해커"),
    ("北미사일 대응 훈련 실시", "<北미사일"),
    ("北핵 능력 고도화 우려", "<北핵"),
    ("北도발 땐 즉각 대응", "<北도발"),
    ("北주민 생활고 심화", "<北주민"),
    ("北매체 \"남측 훈련은 도발\"", "<北매체"),
    ("北정권 인권 탄압 보고서", "<北정권"),
    ("北당국 국경 봉쇄 강화", "<北당국"),
    ("北외무성 담화 발표", "<北외무성"),
    ("北국방성 \"정찰위성 곧 발사\"", "<北국방성"),
    ("北측 대표단 판문점 도착", "<北측"),
    ("北군 전선 동향 주시", "<北군"),
    ("남북 정상회담 5주년 토론회", "남북"),
    ("남북관계 경색 장기화", "남북"),
    ("南北 군사합의 복원 논의", "<南北>"),
    ("정부, 대북 전단 살포 자제 요청", "대북"),
    ("對北 제재 위반 선박 적발", "<對北>"),
    ("북핵 협상 재개 가능성", "북핵"),
    ("北核 대응 한미 공조 강화", "北核"),
    ("탈북민 정착지원금 인상", "탈북"),
    ("脫北 청년 창업 지원 확대", "脫北"),
    ("월북 추정 병사 신원 확인", "월북"),
    ("탈북민 강제북송 중단 촉구 결의안", "강제북송"),
    ("국제사회, 강제 북송 우려 표명", "강제 북송"),
    ("시민단체 '북송 반대' 집회", "북송 반대"),
    ("유엔, 북송 중단 요구", "북송 중단"),
    ("북송 저지 위해 국제 공조", "북송 저지"),
    ("재일교포 북송사업 피해자 증언", "북송사업"),
    ("북미 정상회담 재추진설", "북미 정상"),
    ("북미정상회담 앞두고 물밑 접촉", "북미정상"),
    ("북미 대화 물꼬 트이나", "북미 대화"),
    ("북미대화 재개 조건", "북미대화"),
    ("북미 협상 교착 장기화", "북미 협상"),
    ("북미협상 실무팀 구성", "북미협상"),
    ("북미 관계 개선 신호", "북미 관계"),
    ("북미관계 새 국면", "북미관계"),
    ("북미 비핵화 논의 재개", "북미 비핵화"),
    ("김정은, 신형 구축함 진수식 참석", "김정은"),
    ("김여정 담화 \"대화 의사 없다\"", "김여정"),
    ("김주애 후계자설 다시 고개", "김주애"),
    ("김정일 생일 맞아 대규모 행사", "김정일"),
    ("김일성 광장서 야간 열병식", "김일성"),
    ("리설주 1년 만에 공개 행보", "리설주"),
    ("조선중앙통신 \"신형 ICBM 시험발사 성공\"", "조선중앙통신"),
    ("조선중앙TV, 열병식 녹화 중계", "조선중앙TV"),
    ("조선중앙방송 \"전원회의 소집\"", "조선중앙방송"),
    ("노동신문 사설 \"자력갱생\" 강조", "노동신문"),
    ("조선노동당 전원회의 폐막", "조선노동당"),
    ("조선인민군 창건 기념일", "조선인민군"),
    ("조선민주주의인민공화국 헌법 개정", "조선민주주의인민공화국"),
    ("평양 순안공항 활주로 확장", "평양"),
    ("풍계리 핵실험장 복구 정황", "풍계리"),
    ("영변 핵시설 가동 징후", "영변"),
    ("개성공단 입주기업 지원 연장", "개성공단"),
    # Japanese
    ("北朝鮮、日本海に弾道ミサイル", "北朝鮮"),
    ("北、弾道ミサイル発射 EEZ外に落下", "<北>"),
    ("金正恩氏が軍需工場を視察", "金正恩"),
    ("金与正氏が談話を発表", "金与正"),
    ("金正日総書記の誕生日で祝賀行事", "金正日"),
    ("金日成主席の生誕記念日", "金日成"),
    ("平壌で軍事パレード", "平壌"),
    ("朝鮮中央通信が新型兵器を報道", "朝鮮中央通信"),
    ("朝鮮中央テレビが映像公開", "朝鮮中央テレビ"),
    ("労働新聞が日本を非難", "労働新聞"),
    ("朝鮮労働党大会が開幕", "朝鮮労働党"),
    ("朝鮮人民軍が砲撃訓練", "朝鮮人民軍"),
    ("金総書記、新型駆逐艦を視察", "金総書記"),
    ("北ミサイル、日本海に落下か", "北ミサイル"),
    ("北の核開発に懸念", "北の核"),
    ("日朝首脳会談の実現目指す", "日朝首脳"),
    ("日朝関係の打開策は", "日朝関係"),
    ("日朝交渉が再開へ", "日朝交渉"),
    ("日朝会談の準備進む", "日朝会談"),
    ("日朝平壌宣言から節目の年", "日朝平壌宣言"),
    ("米朝首脳会談の可能性", "米朝"),
    ("露朝の軍事協力に警戒", "露朝"),
    ("拉致問題の早期解決を要請", "拉致問題"),
    ("拉致被害者家族会が集会", "拉致被害者"),
    ("横田めぐみさんの弟が講演", "横田めぐみ"),
    ("朝鮮半島非核化へ連携", "半島非核化"),
    ("朝鮮半島の非核化で一致", "半島の非核化"),
    ("脱北者の手記が出版", "脱北"),
    # Chinese
    ("朝鲜再次发射弹道导弹", "朝鲜"),
    ("朝鮮發射兩枚短程導彈", "朝鮮"),
    ("北韓試射短程飛彈", "北韓"),
    ("北韩宣布新的五年计划", "北韩"),
    ("平壤举行大型阅兵式", "平壤"),
    ("金與正發表談話批評南韓", "金與正"),
    ("朝中社：最高领导人视察工厂", "朝中社"),
    ("朝鲜中央通讯社发表评论", "朝鲜中央通讯社"),
    ("劳动新闻发表社论", "劳动新闻"),
    ("勞動新聞刊登評論文章", "勞動新聞"),
    ("劳动党中央全会闭幕", "劳动党"),
    ("勞動黨召開會議", "勞動黨"),
    ("朝核问题六方会谈", "朝核"),
    ("各方重申半岛无核化目标", "半岛无核化"),
    ("推動半島無核化進程", "半島無核化"),
    ("金永南逝世 终年97岁", "金永南"),
    ("韩日确认对朝政策紧密合作", "对朝"),
    ("美國加強對朝制裁", "對朝"),
    ("中朝友好合作互助条约签订纪念", "中朝友好"),
    ("外交部：推动中朝傳統友好", "中朝傳統友好"),
    ("外交部：推动中朝传统友好", "中朝传统友好"),
    ("中朝关系迎来新阶段", "中朝关系"),
    ("中朝關係持續升溫", "中朝關係"),
    ("中朝边境口岸恢复通关", "中朝边境"),
    ("中朝邊境貿易回暖", "中朝邊境"),
    # mixed scripts and full-width forms
    ("DPRK 北 미사일 발사 후 성명", "<北>"),
    ("ＤＰＲＫ와 北, 담화 발표", "<北>"),        # full-width Latin
    ("北，弹道导弹", "<北>"),                     # full-width comma
    ("北\u3000弾道ミサイル発射", "<北>"),         # ideographic space
    ("北朝鮮ﾐｻｲﾙ発射", "北朝鮮"),                # half-width katakana
    ("Ｋｉｍ Ｊｏｎｇ－ｕｎ 김정은 위원장", "김정은"),
    ("North Korea 北 ICBM", "<北>"),
]

# Headlines the rules must leave alone: the traps of the issue and every
# longer word the rules exclude (test_every_excluded_word_has_a_headline).
LOOK_ALIKES = [
    # Korean
    "태평양 연안 국가 정상회의 개막",          # 태평양 contains 평양
    "환태평양 조산대 지진 잇따라",
    "아시아대평양 지역 협력 포럼",              # a common misspelling of the same
    "평양냉면 맛집 오픈런 행렬",               # a noodle dish served in Seoul
    "동서남북 어디서나 30분 배달",             # the compass contains 남북
    "강남북 격차 해소 방안 발표",              # Seoul's two banks
    "남북전쟁 다룬 미국 영화 개봉",            # the American Civil War
    "미국 남북 전쟁 기념관 재개관",
    "남북조 시대 불교 미술 특별전",            # China's Northern and Southern dynasties
    "남북극 빙하 감소 가속",                   # the poles
    "새 도로, 남북 방향으로 시내 관통",        # a north-south line
    "남북방향 간선도로 확장",
    "남북으로 뻗은 산맥 따라 트레킹",
    "도시의 남북 축 따라 녹지 조성",
    "대북미 수출 3개월째 증가",                # to North America
    "대북아프리카 교역 확대",                  # to North Africa
    "북한산 등산로 일부 통제",                 # the mountain in Seoul
    "북한강 수상레저 성수기",                  # the river
    "노트북 신제품 출시 경쟁",                 # 북 inside words
    "페이스북 접속 장애 복구",
    "경북 포항 앞바다 지진",
    "북부 지방 폭우 주의보",
    "북쪽 하늘에 오로라",
    "북극 한파 남하",
    "북미 시장 공략 가속",                     # North America
    "K팝 그룹 북미 투어 매진",
    "북 콘서트 열린 동네 서점",                # a book event
    "작가와 함께하는 북 토크",
    "e북 시장 성장세",                         # e-books
    "배우 김정은, 드라마로 복귀",              # the actress
    "[사진] 김정은 기자",                       # a byline
    "김정은 아나운서 결혼",
    "조선일보 창간 기념식",                    # 조선 is not a term
    "조선업 호황에 인력난",
    "조선소 화재 진화",
    "조선 빅3 수주 랠리",
    "북송 시대 도자기 특별전",                 # the Northern Song dynasty
    # Chinese and Japanese
    "湖北核电站项目获批",                       # Hubei, not 北核
    "河北核查结果公布",
    "东北核心城市群规划",
    "東北核能研究所",
    "华北核心区域降雨",
    "華北核電評估",
    "西北核工业基地",
    "台北核四公投",
    "臺北核災應變演練",
    "朝鲜日报报道韩国经济",                     # the newspaper
    "朝鮮日報：韓國股市",
    "▲照片/朝鲜DB",                            # its photo credit
    "▲照片/朝鮮DB",
    "朝鲜族舞蹈表演",                           # China's Korean minority
    "延边朝鮮族自治州",
    "朝鲜王朝的宫廷礼仪",                       # the Joseon dynasty
    "朝鮮王朝の宮廷料理",
    "在朝鲜时代的科举中",
    "朝鮮時代の陶磁器",
    "朝鲜前期的书法",
    "朝鲜后期的小说",
    "古朝鲜遗址考古",
    "古朝鮮の神話",
    "朝鲜语学习热",                             # the language
    "朝鮮語大辞典",
    "朝鲜战争参战国纪念",                       # the Korean War as a date
    "朝鮮戰爭七十五週年",
    "朝鮮戦争の記憶",
    "朝鲜半岛的古代历史",                       # the peninsula in history pieces
    "朝鮮半島の古代史",
    "朝鮮通信使の足跡をたどる",
    "朝鮮学校への補助金",
    "関東大震災 朝鮮人虐殺の追悼",
    "満州・朝鮮引き揚げの記憶を語る",          # settlers' return from colonial Korea, 1945
    "朝鮮引揚げ船の記録展",
    "朝鮮引揚者の手記",
    "29·19 합의",                              # not the 9·19 agreement: another number
    "大军直朝核心区域挺进",                     # 朝 "toward" + 核心 "core"
    "市民对朝阳公园改造满意",                   # Beijing's Chaoyang district
    "對朝陽區的規劃",
    "面对朝霞拍照",
    "面對朝陽升起",
    "北京で日中首脳会談",                       # 北 as "north"
    "北海道で大雪",
    "台北國際書展開幕",
    "東北新幹線が運転再開",
    "北米市場で販売好調",
    "面對北約擴張",
    "5日朝から雪の予報",                        # 日朝 as "the morning of the 5th"
    "同日朝に会見",
    "落語家 桂米朝さんの特集",                 # the rakugo master
    "北美票房冠军",
]

# (headline, whether missile_tests must match): Korean, Japanese and Chinese
# launch words.
MISSILE_HEADLINES = [
    ("북한, 동해상으로 탄도미사일 발사", True),
    ("신형 미사일 시험 성공 주장", True),
    ("북, 미사일 두 발 쐈다", True),
    ("북이 쏜 미사일 낙하 지점 분석", True),
    ("미사일 쏘아 올린 직후 성명", True),
    ("미사일 도발 규탄 성명", True),
    ("미사일 방어 예산 증액", False),
    ("北朝鮮が弾道ミサイルを発射", True),
    ("ミサイル試射を確認", True),
    ("ミサイル実験に抗議", True),
    ("ミサイルを打ち上げ", True),
    ("ミサイル防衛の強化", False),
    ("朝鲜发射弹道导弹", True),
    ("北韓試射飛彈", True),
    ("朝鮮發射導彈", True),
    ("导弹试验成功", True),
    ("飛彈試驗失敗", True),
    ("导弹防御系统部署", False),
]


@pytest.fixture(scope="module")
def rules():
    return load_topics(str(RULES))


@pytest.fixture
def matcher(rules, matcher_engine):
    return TopicMatcher(rules)


def found(matcher, title, summary=""):
    return {name: [m.term for m in ms] for name, ms in matcher.match(title, summary, "")}


@pytest.mark.parametrize("headline, term", NAMES_NORTH_KOREA, ids=[t for _, t in NAMES_NORTH_KOREA])
def test_names_north_korea(matcher, headline, term):
    result = found(matcher, headline)
    assert term in result.get("dprk_mentions", []), result
    assert "dprk" in result  # named in the headline


@pytest.mark.parametrize("headline", LOOK_ALIKES)
def test_look_alikes_are_not_north_korea(matcher, headline):
    result = found(matcher, headline)
    assert "dprk_mentions" not in result, result


@pytest.mark.parametrize("headline, launched", MISSILE_HEADLINES, ids=[h for h, _ in MISSILE_HEADLINES])
def test_missile_launch_words(matcher, headline, launched):
    assert ("missile_tests" in found(matcher, headline)) == launched


def test_a_lead_must_name_it_twice_or_the_headline_once(matcher):
    # dprk: the headline names North Korea, or the summary does twice, or
    # the story three times; a lead that names it once in passing is a
    # mention (the evaluation set's `mentions` label).
    once = "청년 구직 지원 사업 참여자를 모집한다. 대상에는 탈북민 청년도 포함된다."
    twice = "통일 정책 설명회가 열렸다. 북한 인권 문제와 탈북민 지원이 논의됐다."
    assert sorted(found(matcher, "청년도전 지원사업 참여자 모집", once)) == ["dprk_mentions"]
    assert sorted(found(matcher, "정책 설명회 개최", twice)) == ["dprk", "dprk_mentions"]


def test_other_languages_keep_the_terms_of_the_bundled_rules(rules):
    # Issue 18 changes the Korean, Japanese and Chinese terms only: English
    # and the others are those of seeds/topics.yaml, in the same order.
    bundled = load_topics(str(SEEDS / "topics.yaml"))
    ours = {t.name: t for t in rules}
    for topic in bundled:
        old = [t.text for t in _parsed(topic).terms() if not is_unspaced(t.text)]
        new = [t.text for t in _parsed(ours[topic.name]).terms() if not is_unspaced(t.text)]
        assert new == old, topic.name


def _parsed(topic):
    return parse_query(topic.query, fold_accents=topic.fold_accents)


# ---------------------------------------------------------------- coverage


def _guards(rules):
    """(the Korean, Japanese and Chinese terms of dprk_mentions that find
    North Korea, the longer words its EXCEPTs exclude)."""
    node = _parsed(next(t for t in rules if t.name == "dprk_mentions"))
    excluded = set()
    for n in walk(node):
        if isinstance(n, Except):
            excluded.update(t.text for t in n.right_terms)
    terms = {t.text for t in node.terms() if is_unspaced(t.text)} - excluded
    return terms, excluded


def test_every_term_has_a_headline(rules):
    terms, _ = _guards(rules)
    assert terms - {term for _, term in NAMES_NORTH_KOREA} == set()


def test_every_excluded_word_has_a_headline(rules):
    # Each longer word of an EXCEPT, as a term of its own, is found in at
    # least one of LOOK_ALIKES: the exclusion is exercised, not just written.
    _, excluded = _guards(rules)
    lone = TopicMatcher([(f"w{i}", f'"{word}"') for i, word in enumerate(sorted(excluded))])
    names = {f"w{i}": word for i, word in enumerate(sorted(excluded))}
    seen = {names[name] for headline in LOOK_ALIKES for name, _ in lone.match(headline, "", "")}
    assert excluded - seen == set()
