"""Unit tests for rag/question.py: what analyse() reads from a question, and nothing else does."""

from __future__ import annotations

import ast
import json
import re
from datetime import date
from pathlib import Path

import pytest

from rag.question import (
    Query,
    QuestionError,
    analyse,
    ask_of,
    asked_speaker,
    asking_part,
    clean,
    focus_weights,
    is_follow_up,
    named_phrases,
    other_language,
)

ROOT = Path(__file__).resolve().parents[2]


def test_clean() -> None:
    assert clean("  what\u00a0about\n\n drones? ", 2000) == ("what about drones?", None)
    assert clean("ｄｒｏｎｅｓ", 2000) == ("drones", None)
    text, note = clean("x" * 2500, 2000)
    assert len(text) == 2000 and note and "2,000" in note
    with pytest.raises(QuestionError):
        clean("\u200b", 2000)


PASTE = " ".join(
    f"Paragraph {i} of the pasted article gives the statements of day {i}." for i in range(300)
)


def test_a_long_paste_keeps_only_the_question_at_its_end() -> None:
    question = "Where is the drone factory being built?"
    text, note = clean(PASTE + "\n\n" + question, 2000)
    # The paste would decide the search: only the sentence that asks is searched.
    assert text == question
    assert note == (
        f"question too long ({len(PASTE) + 1 + len(question):,} characters; "
        "RAG_MAX_QUESTION_CHARS is 2,000): kept only the sentence that asks, left out the first "
        f"{len(PASTE) + 1:,} characters"
    )


def test_a_long_paste_keeps_the_sentence_a_question_refers_to() -> None:
    text, note = clean(PASTE + " Iran sent drones to Russia. Who denies it?", 2000)
    assert text == "Iran sent drones to Russia. Who denies it?"
    assert note is not None and "and the one before it, which it refers to" in note


def test_a_long_paste_keeps_the_question_before_a_closing_line() -> None:
    text, note = clean(PASTE + " Who denies sending drones? Thanks a lot, this helps.", 2000)
    assert text.endswith("Who denies sending drones?")
    assert note is not None and note.endswith(
        ", left out the first 20,480 characters and the last 26"
    )


def test_a_long_paste_without_a_question_mark_keeps_its_asking_sentence() -> None:
    text, _ = clean(PASTE + " Explain who builds the factory. Thanks.", 2000)
    assert text.endswith("Explain who builds the factory.")


def test_analyse_reads_everything_once() -> None:
    query = analyse(
        "Tehran supplies drones from a plant east of Moscow. How many workers does the "
        "Alabuga plant employ, according to the White House?",
        date(2024, 2, 1),
    )
    assert isinstance(query, Query)
    assert query.asking.startswith("How many workers")
    assert query.kind == "number" and query.counted == "worker"
    assert ("alabuga",) in query.names and ("white", "hous") in query.names
    assert query.speaker is None and not query.yes_no and not query.recency
    assert query.today == date(2024, 2, 1)
    data = query.to_json()
    assert data["kind"] == "number" and data["today"] == "2024-02-01"
    assert ["white", "hous"] in data["names"]


def test_recency_yes_no_and_about_the_article() -> None:
    assert analyse("What is the latest on the drones?").recency
    assert analyse("Did Iran send missiles to Russia?").yes_no
    assert analyse("Who wrote the article about the drone factory?").about_article
    assert analyse("When was the story on sanctions published?").about_article
    assert not analyse("Where is the drone factory?").about_article


def test_asked_about_is_the_head_of_a_what_is_the_x_of_question() -> None:
    assert analyse("Who is Russia's ambassador to Iran?").asked_about == {"ambassador"}
    assert analyse("What is the maximum range of the missiles?").asked_about == {
        "maximum",
        "rang",
    }
    # Words that only name the shape of the answer are not looked for.
    assert analyse("What is the model name of the missile?").asked_about == {"model"}
    assert analyse("Where is the drone factory?").asked_about == set()
    # Past a shape word, what is named comes after "of".
    question = "What is the name of the ship that carried the missiles?"
    assert analyse(question).asked_about == {"ship"}


def test_named_phrases_skip_the_first_word_and_us() -> None:
    assert named_phrases("How many sanctions did the European Union impose on Iran?") == [
        ("european", "union"),
        ("iran",),
    ]
    assert named_phrases("Which US spokesman spoke?") == []


def test_named_phrases_keep_many_word_names_together() -> None:
    assert named_phrases("When will the UN Security Council vote on Iran-backed plans?") == [
        ("un", "secur", "council"),
        ("iran",),
    ]


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who wrote the article about the drone factory?", "author"),
        ("Who is the author of the G7 story?", "author"),
        # "Author" as a title is not a question about the article's author.
        (
            "Author-illustrator Raymond Briggs was most celebrated for which children's book?",
            "which",
        ),
        ("Passengers were offered how much money to give up their seats?", "money"),
        # A scene-setting sentence first: the asking sentence decides.
        (
            "Microsoft retired its Internet Explorer browser this week. What year did it debut?",
            "date",
        ),
        ("What sign did the coin bear?", "which"),
        ("What did he say?", None),
        # The thing priced comes before "how much".
        ("The new law gives fast food workers a starting pay of how much?", "money"),
    ],
)
def test_the_kind_is_read_from_the_asking_sentence(question: str, kind: str | None) -> None:
    assert analyse(question).kind == kind


def test_an_abbreviation_does_not_split_the_question_into_clauses() -> None:
    # One clause: "Gavin Newsom" is as much what is asked about as "law".
    weights = focus_weights("Which law did California Gov. Gavin Newsom sign?", 3.0)
    assert weights["newsom"] == weights["law"] == 1.0


def test_the_asking_clause_weighs_more() -> None:
    weights = analyse("Tehran supplies a plant east of Moscow; in which zone is that plant?").focus
    assert weights["zone"] == 3.0 and weights["tehran"] == 1.0


def test_the_asking_sentence_is_not_cut_at_an_abbreviation() -> None:
    # "Gov." ends no sentence: the whole question asks.
    question = (
        "California Gov. Gavin Newsom signed a law giving workers a starting pay of how much?"
    )
    assert asking_part(question) == question
    assert asking_part("IE retired this week. What year did it debut?") == (
        "What year did it debut?"
    )


@pytest.mark.parametrize(
    ("question", "required", "owner"),
    [
        ("What did Iran say about the missile transfers?", {"iran"}, set()),
        ("How has Tehran responded to the accusations?", {"tehran"}, set()),
        # A name is quoted by its last word: "Kirby said".
        ("What did John Kirby warn would happen?", {"kirbi"}, set()),
        # Not a name: both words.
        ("What did the CIA director warn about?", {"cia", "director"}, set()),
        # Whose it is need not be the speaker, but must be near.
        ("What did Iran's supreme leader say about the sanctions?", {"suprem", "leader"}, {"iran"}),
        ("After first denying it, what did Tehran acknowledge?", {"tehran"}, set()),
        ("Did the White House confirm the transfer?", {"hous"}, set()),
    ],
)
def test_asked_speaker(question: str, required: set[str], owner: set[str]) -> None:
    speaker = analyse(question).speaker
    assert speaker is not None
    assert speaker.required == required and speaker.owner == owner


@pytest.mark.parametrize(
    "question",
    [
        "Which sea do the drones cross on their way to Russia?",
        "How many drones has Russia received?",
        # A fact reported by somebody, which the article may state in its own voice.
        "According to Iran's foreign minister, why did the delegation not attend?",
        # Who "he" is, only the words before the question say.
        "Biden made a declaration this week. What did he say?",
        # The actor of an event, not a speaker: the article may report it in its own voice.
        "When did the Biden administration announce new sanctions?",
        "What new sanctions did the Biden administration announce?",
        "Why did the G-7 warn Iran?",
    ],
)
def test_questions_that_ask_for_no_speaker(question: str) -> None:
    assert asked_speaker(question) is None


def test_follow_ups() -> None:
    assert is_follow_up("and what about missiles?")
    assert is_follow_up("When?")  # three words at most lean on the question before
    assert is_follow_up("Why is that so?")
    assert not is_follow_up("Who is John Kirby, the spokesman?")


def test_a_bare_name_as_follow_up_asks_the_previous_question_of_it() -> None:
    previous = "What did Kirby say about the drone factory?"
    assert ask_of(previous, "And Iran?") == "What did Iran say about the drone factory?"
    assert ask_of(previous, "What about the G-7 leaders?") == (
        "What did the G-7 leaders say about the drone factory?"
    )
    # Not a name, or a question of its own, or a previous question that asked no speaker.
    assert ask_of(previous, "And the drones?") is None
    assert ask_of(previous, "And when?") is None
    assert ask_of(previous, "And what did Iran say?") is None
    assert ask_of("Where is the drone factory?", "And Iran?") is None


def _question_readers(path: Path) -> list[str]:
    """Names of functions in path that apply a regex to a parameter named like a question."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        params = {a.arg for a in fn.args.args}
        asked = params & {"question", "query", "follow_up", "previous"}
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"search", "match", "findall", "finditer", "sub", "fullmatch"}
                and any(isinstance(a, ast.Name) and a.id in asked for a in node.args)
            ):
                found.append(f"{path.name}:{fn.name}")
    return found


def test_only_question_py_applies_patterns_to_the_question() -> None:
    readers = [
        reader
        for path in sorted((ROOT / "rag").rglob("*.py"))
        if path.name != "question.py"
        for reader in _question_readers(path)
    ]
    assert readers == []
    # The check itself finds question.py's own readers.
    assert any(
        re.match(r"question\.py:", r) for r in _question_readers(ROOT / "rag" / "question.py")
    )


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("¿Dónde se está construyendo la fábrica de drones?", "Spanish"),
        ("¿Quién niega haber enviado drones a Rusia?", "Spanish"),
        ("Где строится завод по производству дронов?", "Cyrillic script"),
        ("Wo wird die Drohnenfabrik gebaut?", "German"),
        ("Welche Raketen hat der Iran an Russland geliefert?", "German"),
        ("无人机工厂建在哪里？", "Chinese"),
        ("Où est construite l'usine de drones ?", "French"),
    ],
)
def test_a_question_in_another_language_gets_a_plain_note(question: str, language: str) -> None:
    _, note = clean(question, 2000)
    assert note == (
        f"this question seems to be in {language}; rag answers questions in English, the "
        "language of the articles"
    )


ENGLISH_WITH_FOREIGN_NAMES = [
    "What did Ursula von der Leyen say in an interview about sanctions?",
    "Did Charles de Gaulle visit La Paz?",
    "What did El País and Der Spiegel report about Los Angeles?",
    "What did the UN say about Iran's drones?",
    "When did Hossein Amir-Abdollahian meet Sergei Lavrov in Moscow?",
    "Which São Paulo firm did Le Monde name?",
]


def test_english_questions_get_no_language_note() -> None:
    shipped = sorted((ROOT / "eval").glob("*.jsonl"))
    rows = [
        json.loads(line) for p in shipped for line in p.read_text().splitlines() if line.strip()
    ]
    questions = [row["question"] for row in rows if "question" in row]
    assert len(questions) > 100 and any(p.name == "qa.jsonl" for p in shipped)
    flagged = [q for q in [*questions, *ENGLISH_WITH_FOREIGN_NAMES] if other_language(q)]
    assert flagged == []


def test_specific_things_are_designations_quoted_terms_and_names() -> None:
    query = analyse("Did Emmanuel Macron call the Shahed-238 a 'kamikaze drone' after the G-7 met?")
    found = {s.text: (s.stems, s.exact) for s in query.specific}
    assert found == {
        "Shahed-238": (("shahe", "238"), True),
        "G-7": (("g7",), True),
        "kamikaze drone": (("kamikaz", "drone"), True),
        # A name, not spelled exactly: the articles may give "Macron" alone, but not without
        # an "Emmanuel" somewhere (rag/pipeline.unnamed).
        "Emmanuel Macron": (("emmanuel", "macron"), False),
    }
    # A year is no designation, a long quotation no term, and a name of one word may be a
    # metonym the articles don't use ("Beijing" for China).
    quoting = analyse('Did Beijing\'s envoy say "we will never send drones" in 2023?')
    assert quoting.specific == ()
    # Not across a sentence's end: the asking sentence starts a name of its own.
    federer = analyse("Federer will retire after the Laver Cup. Which Grand Slam has he won?")
    assert [s.text for s in federer.specific] == ["Laver Cup", "Grand Slam"]
