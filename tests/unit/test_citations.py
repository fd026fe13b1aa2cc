"""Unit tests for citation parsing and verification: markers, support checks, retrieved-only."""

from __future__ import annotations

from rag.answering import Answer, Sentence
from rag.answering.citations import clauses, compose, recite, renumber, split_answer, verify
from rag.retrieval import Passage
from rag.settings import Tuning
from tests.fakes import HashingEmbeddings

FACTORY = (
    "According to Kirby, the alleged drone factory will be built in the Alabuga special "
    "economic zone in the Russian republic of Tatarstan. The White House released a satellite "
    "photo of an industrial site 600 miles east of Moscow."
)
SHIPMENTS = (
    "The drones are shipped across the Caspian Sea from Amirabad, Iran, to Makhachkala, Russia. "
    "As of May, Russia received hundreds of one-way attack drones from Iran, Kirby added."
)
SANCTIONS = (
    "The Group of Seven countries are mulling a ban on Iran Air flights to Europe, according to "
    "a senior Biden administration official."
)


def passage(
    rank: int, text: str, title: str = "White House Says Iran Is Helping Russia"
) -> Passage:
    """A retrieved passage as the retriever returns it."""
    return Passage(
        rank=rank,
        chunk_id=f"chunk-{rank}",
        text=text,
        source=f"article-{rank}.txt",
        title=title,
        date="2023-06-09",
        start=100 * rank,
        end=100 * rank + len(text),
        score=1.0 / rank,
    )


PASSAGES = [passage(1, FACTORY), passage(2, SHIPMENTS), passage(3, SANCTIONS, "G7 warns Iran")]


def test_markers_belong_to_the_sentence_they_follow() -> None:
    parsed = split_answer(
        "The factory is in Tatarstan [1]. Drones cross the Caspian Sea [1, 2]. "
        "Kirby said so. [2] The G7 may ban Iran Air [3][1]."
    )
    assert parsed == [
        ("The factory is in Tatarstan.", (1,)),
        ("Drones cross the Caspian Sea.", (1, 2)),
        ("Kirby said so.", (2,)),
        ("The G7 may ban Iran Air.", (3, 1)),
    ]


def test_extractive_style_answer_cites_every_sentence() -> None:
    """`sentence. [1] sentence. [2]` (how the extractive answerer writes) keeps each marker."""
    text = f"{FACTORY.split('. ')[0]}. [1] {SHIPMENTS.split('. ')[0]}. [2]"
    sentences, citations = verify(text, PASSAGES, None)
    assert [s.cites for s in sentences] == [(1,), (2,)]
    assert all(s.supported for s in sentences)
    assert [c.n for c in citations] == [1, 2]


def test_supported_sentence_quotes_the_passage_sentence() -> None:
    text = "The drone factory will be built in the Alabuga special economic zone in Tatarstan [1]."
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert sentences[0].supported
    (c,) = citations
    assert (c.n, c.supported, c.source, c.title) == (1, True, "article-1.txt", PASSAGES[0].title)
    assert c.quote.startswith("According to Kirby, the alleged drone factory")
    assert (c.start, c.end, c.chunk_id) == (PASSAGES[0].start, PASSAGES[0].end, "chunk-1")


def test_made_up_number_is_unsupported() -> None:
    text = "Russia received 4,000 one-way attack drones from Iran as of May, Kirby added [2]."
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert not sentences[0].supported
    assert citations[0].n == 2 and not citations[0].supported


def test_the_right_number_is_supported() -> None:
    text = "The industrial site is 600 miles east of Moscow [1]."
    sentences, _ = verify(text, PASSAGES, HashingEmbeddings())
    assert sentences[0].supported


def test_citation_of_a_passage_that_was_not_retrieved() -> None:
    text = "The factory is in the Alabuga special economic zone in Tatarstan [9]."
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert sentences[0].cites == (9,)
    assert not sentences[0].supported
    assert citations == []


def test_one_bad_citation_spoils_a_sentence_with_a_good_one() -> None:
    text = "The factory is in the Alabuga special economic zone in Tatarstan [1][9]."
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert not sentences[0].supported
    assert [c.n for c in citations] == [1]


def test_sentence_without_citation_is_unsupported_and_counted() -> None:
    text = (
        "The factory is in the Alabuga special economic zone in Tatarstan [1]. "
        "Iran has denied everything."
    )
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert [s.supported for s in sentences] == [True, False]
    assert sentences[1].cites == ()
    answer = Answer("q", text, False, "test", citations, PASSAGES, sentences)
    assert answer.unsupported == 1


def test_citing_the_wrong_passage_is_unsupported() -> None:
    text = "The G7 countries are mulling a ban on Iran Air flights to Europe [1]."
    sentences, citations = verify(text, PASSAGES, HashingEmbeddings())
    assert not sentences[0].supported
    assert not citations[0].supported


def test_lexical_only_check_for_verbatim_extracts() -> None:
    sentences, _ = verify(f"{SANCTIONS} [3]", PASSAGES, None)
    assert sentences[0].supported
    sentences, _ = verify("Tehran rejected every accusation outright [3].", PASSAGES, None)
    assert not sentences[0].supported


def test_marker_ends_a_sentence_without_final_period() -> None:
    """A quoted headline has no period: its marker still closes it, so each part is checked
    against its own passage only."""
    parsed = split_answer("Another nation picks a leftist leader [1] Gustavo Petro won. [2]")
    assert parsed == [("Another nation picks a leftist leader", (1,)), ("Gustavo Petro won.", (2,))]


def test_citations_are_numbered_in_the_order_the_answer_cites_them() -> None:
    one = SANCTIONS
    two = FACTORY
    sentences, citations = verify(f"{one} [3] {two} [1] {one} [3, 1]", PASSAGES, None)
    text, sentences, citations = renumber(f"{one} [3] {two} [1] {one} [3, 1]", sentences, citations)
    # Not a lone [3] then [1]: what is cited first is [1].
    assert text == f"{one} [1] {two} [2] {one} [1, 2]"
    assert [(c.n, c.rank) for c in citations] == [(1, 3), (2, 1)]
    assert [s.cites for s in sentences if s.cites] == [(1,), (2,), (1, 2)]
    # A number citing no passage keeps its number (it is flagged unsupported).
    sentences, citations = verify(f"{one} [9] {two} [2]", PASSAGES, None)
    text, _, citations = renumber(f"{one} [9] {two} [2]", sentences, citations)
    assert text.endswith("[1]") and "[9]" in text and [c.rank for c in citations] == [2]


def test_a_composed_answer_cites_before_each_final_stop_and_parses_back() -> None:
    sentences = [
        Sentence("The factory is in Tatarstan.", (1,), True),
        Sentence('Kirby said it was "a full-scale defence partnership."', (2, 3), True),
        Sentence("No stop at the end", (4,), True),
    ]
    text = compose(sentences)
    assert text == (
        "The factory is in Tatarstan [1]. "
        'Kirby said it was "a full-scale defence partnership [2, 3]." '
        "No stop at the end [4]"
    )
    assert [cites for _, cites in split_answer(text)] == [(1,), (2, 3), (4,)]


def test_with_the_question_check_on_a_word_of_the_question_its_passage_lacks_refuses() -> None:
    minister = passage(
        1,
        "For Iran's part, in November, Foreign Minister Hossein Amirabdollahian said that a "
        "meeting was planned.",
    )
    answer = "Iran's defence minister is Hossein Amirabdollahian [1]."
    question = frozenset({"iran", "defenc", "minist"})  # Query.focus of the question
    strict = Tuning(guard_question_words=True)
    embedder = HashingEmbeddings()
    # Its facts are in the passage: only the question's "defence" gives it away.
    assert verify(answer, [minister], embedder, Tuning(), question)[0][0].supported
    (sentence,), (citation,) = verify(answer, [minister], embedder, strict, question)
    assert not sentence.supported and not citation.supported
    assert sentence.reason == '"defenc" (a word of the question) is not in passage [1]'
    ok = "Foreign Minister Hossein Amirabdollahian said a meeting was planned [1]."
    asked = frozenset({"iran", "foreign", "minist"})
    assert verify(ok, [minister], embedder, strict, asked)[0][0].supported


def test_an_uncited_true_sentence_is_cited_to_the_passage_that_supports_it() -> None:
    """Tried as a new user would: the 0.5B's true sentences carried no [n] and were refused."""
    passages = [passage(1, SANCTIONS), passage(2, FACTORY)]
    uncited = Sentence(
        "The drone factory will be built in the Alabuga zone in Tatarstan.", (), False
    )
    assert recite([uncited], passages, HashingEmbeddings()) == [Sentence(uncited.text, (2,), True)]
    # a wrong citation is corrected the same way
    cited = Sentence(uncited.text, (1,), False)
    assert recite([cited], passages, HashingEmbeddings()) == [Sentence(uncited.text, (2,), True)]


def test_an_uncited_sentence_no_passage_supports_says_why() -> None:
    invented = Sentence("The drone factory will be built in Yelabuga in Tatarstan.", (), False)
    (kept,) = recite([invented], PASSAGES, HashingEmbeddings())
    assert not kept.supported and kept.cites == ()
    assert kept.reason == (
        'it cites no passage, and none supports it: "Yelabuga" is not in passage [1]'
    )


def test_a_question_word_in_another_spelling_still_needs_the_passage() -> None:
    minister = passage(
        1,
        "For Iran's part, in November, Foreign Minister Hossein Amirabdollahian said that a "
        "meeting was planned.",
    )
    invented = Sentence("Iran's defense minister is Hossein Amirabdollahian.", (), False)
    # the US spelling escapes the question's "defence" (stem "defenc"), but not the check,
    # when it is on (Tuning.guard_question_words: off by default, as fitted; see its comment)
    question = frozenset({"iran", "defenc", "minist"})
    strict = Tuning(guard_question_words=True)
    (kept,) = recite([invented], [minister], HashingEmbeddings(), strict, asked=question)
    assert not kept.supported
    assert kept.reason and '"defens" (a word of the question) is not in passage [1]' in kept.reason


def test_is_being_built_is_re_cited_to_will_be_built() -> None:
    """ "being" is no stop word, but its stem "be" is: the passage's "will be built" keeps no
    "be" to match. Qwen2.5-Coder-0.5B's true, uncited answer was dropped for that word."""
    uncited = Sentence(
        "The drone factory is being built in the Alabuga special economic zone in the Russian "
        "republic of Tatarstan.",
        (),
        False,
    )
    question = frozenset({"drone", "factori", "built"})
    assert recite([uncited], PASSAGES, HashingEmbeddings(), asked=question) == [
        Sentence(uncited.text, (1,), True)
    ]


def test_a_sentence_with_one_unsupported_detail_is_cut_to_the_clause_a_passage_supports() -> None:
    whole = (
        "The drone factory will be built in the Alabuga zone in Tatarstan, the Pentagon said "
        "on Tuesday."
    )
    (kept,) = recite([Sentence(whole, (1,), False, '"Pentagon" is not in passage [1]')], PASSAGES,
                     HashingEmbeddings())  # fmt: skip
    assert kept == Sentence(
        "The drone factory will be built in the Alabuga zone in Tatarstan.",
        (1,),
        True,
        '"Pentagon" is not in passage [1]',
        whole=whole,
    )
    # a clause is checked as a sentence is: none here is supported, so nothing is kept
    invented = "The drone factory will be built in Yelabuga, the Pentagon said."
    (dropped,) = recite([Sentence(invented, (1,), False)], PASSAGES, HashingEmbeddings())
    assert not dropped.supported and dropped.whole is None
    # and cutting is a setting
    off = Tuning(guard_cut=False)
    (uncut,) = recite([Sentence(whole, (1,), False)], PASSAGES, HashingEmbeddings(), off)
    assert not uncut.supported


def test_opening_clauses_longest_first() -> None:
    assert clauses("Iran sent drones to Russia, officials said, and Iran denies it.", 3) == [
        "Iran sent drones to Russia, officials said.",
        "Iran sent drones to Russia.",
    ]
    assert clauses("Iran denied it, officials said.", 3) == []
