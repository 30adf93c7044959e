"""herald.compliance.keywords: what an inbound SMS reply asks for (docs/compliance.md)."""

from __future__ import annotations

import pytest
from rapidfuzz.distance import OSA

from herald.compliance.keywords import (
    FALSE_FRIENDS,
    FUZZY_TARGETS,
    Classification,
    KeywordPolicy,
    ReplyKind,
    classify_reply,
    normalize,
)

OUT, PROBABLE, IN, HELP, CONFIRM, RESCHEDULE, OTHER = (
    ReplyKind.OPT_OUT, ReplyKind.PROBABLE_OPT_OUT, ReplyKind.OPT_IN, ReplyKind.HELP,
    ReplyKind.CONFIRM, ReplyKind.RESCHEDULE, ReplyKind.OTHER,
)  # fmt: skip

# (reply as received, kind, keyword_class)
REPLIES = [
    # standard opt-out keywords, any case, surrounding whitespace and punctuation
    ("STOP", OUT, "standard"),
    ("stop", OUT, "standard"),
    ("Stop", OUT, "standard"),
    ("  STOP  ", OUT, "standard"),
    ("STOP.", OUT, "standard"),
    ("Stop!!!", OUT, "standard"),
    ('"stop"', OUT, "standard"),
    ("STOPALL", OUT, "standard"),
    ("Unsubscribe", OUT, "standard"),
    ("CANCEL", OUT, "standard"),
    ("end", OUT, "standard"),
    ("Quit", OUT, "standard"),
    ("REVOKE", OUT, "standard"),
    ("optout", OUT, "standard"),
    ("OPT OUT", OUT, "standard"),
    ("opt-out", OUT, "standard"),
    ("STOP 😡", OUT, "standard"),
    ("STOOOOP", OUT, "standard"),
    ("S T O P", OUT, "standard"),
    # carrier additions
    ("REMOVE", OUT, "carrier"),
    ("arret", OUT, "carrier"),
    ("ARRÊT", OUT, "carrier"),
    ("TD", OUT, "carrier"),
    ("td", OUT, "carrier"),
    # Spanish
    ("PARA", OUT, "spanish"),
    ("alto", OUT, "spanish"),
    ("Basta!", OUT, "spanish"),
    ("CANCELAR", OUT, "spanish"),
    ("NO MAS", OUT, "spanish"),
    ("No más", OUT, "spanish"),
    ("NO MÁS", OUT, "spanish"),
    ("basta ya", OUT, "spanish"),
    ("No mas por favor", OUT, "spanish"),
    ("no más mensajes", OUT, "spanish"),
    ("No me envíen más mensajes", OUT, "spanish"),
    ("Dejen de enviarme mensajes", OUT, "spanish"),
    ("quiero darme de baja", OUT, "spanish"),
    ("Gracias. Basta.", OUT, "spanish"),
    # a keyword with polite filler, or inside a longer reply: more than the bare keyword
    ("Stop please", OUT, "free_text"),
    ("please STOP", OUT, "free_text"),
    ("STOP THANK YOU", OUT, "free_text"),
    ("ok stop", OUT, "free_text"),
    ("stop stop stop", OUT, "free_text"),
    ("Cancel please", OUT, "free_text"),
    ("Opt out pls", OUT, "free_text"),
    ("Remove please", OUT, "free_text"),
    ("Wrong number. STOP", OUT, "free_text"),
    ("STOP!! who is this", OUT, "free_text"),
    ("No, stop", OUT, "free_text"),
    ("Yes, stop.", OUT, "free_text"),
    # free text a reasonable person reads as revocation
    ("stop texting me", OUT, "free_text"),
    ("Stop texting me pls", OUT, "free_text"),
    ("STOP SENDING ME MESSAGES", OUT, "free_text"),
    ("please stop the reminders", OUT, "free_text"),
    ("stop all these texts", OUT, "free_text"),
    ("Stop it", OUT, "free_text"),
    ("I said stop", OUT, "free_text"),
    ("yes stop", OUT, "free_text"),
    ("ok stop by at 3?", OTHER, None),
    ("quit messaging me", OUT, "free_text"),
    ("no stop texting me", OUT, "free_text"),
    ("unsubscribe me please", OUT, "free_text"),
    ("how do I unsubscribe?", OUT, "free_text"),
    ("opt me out", OUT, "free_text"),
    ("please remove me from this list", OUT, "free_text"),
    ("Remove my number", OUT, "free_text"),
    ("take me off your list", OUT, "free_text"),
    ("lose my number", OUT, "free_text"),
    ("don't text me anymore", OUT, "free_text"),
    ("Don’t text me anymore", OUT, "free_text"),
    ("DO NOT CONTACT ME", OUT, "free_text"),
    ("I don't want these texts", OUT, "free_text"),
    ("no more texts", OUT, "free_text"),
    ("No more", OUT, "free_text"),
    ("NO MORE MESSAGES PLEASE", OUT, "free_text"),
    ("leave me alone", OUT, "free_text"),
    ("wrong number", OUT, "free_text"),
    ("cancel my subscription", OUT, "free_text"),
    ("Cancel these reminders", OUT, "free_text"),
    ("🛑", OUT, "standard"),
    # likely but not certain: the policy decides
    ("not interested", PROBABLE, "free_text"),
    ("I'm not interested", PROBABLE, "free_text"),
    # misspellings of opt-out keywords on single-word replies (OSA distance 1)
    ("SOTP", PROBABLE, "misspelling"),
    ("STPO", PROBABLE, "misspelling"),
    ("STP", PROBABLE, "misspelling"),
    ("stopp", PROBABLE, "misspelling"),
    ("Stops", PROBABLE, "misspelling"),
    ("ST0P", PROBABLE, "misspelling"),
    ("sotp please", PROBABLE, "misspelling"),
    ("QUTI", PROBABLE, "misspelling"),
    ("cancle", PROBABLE, "misspelling"),
    ("unsubcribe", PROBABLE, "misspelling"),
    ("UNSUSCRIBE", PROBABLE, "misspelling"),
    ("optuot", PROBABLE, "misspelling"),
    ("stopal", PROBABLE, "misspelling"),
    ("revok", PROBABLE, "misspelling"),
    # false friends: real words, not misspellings
    ("SHOP", OTHER, None),
    ("step", OTHER, None),
    ("Top", OTHER, None),
    ("spot", OTHER, None),
    ("POST", OTHER, None),
    ("stow", OTHER, None),
    ("stoop", OTHER, None),
    ("atop", OTHER, None),
    ("quite", OTHER, None),
    ("quiet", OTHER, None),
    ("suit", OTHER, None),
    ("quiz", OTHER, None),
    ("cancer", OTHER, None),
    ("and", OTHER, None),
    ("send", OTHER, None),
    ("ends", OTHER, None),
    # stop in ordinary sentences, and negations
    ("stop by tomorrow?", OTHER, None),
    ("Can I stop by the office tomorrow to pay?", OTHER, None),
    ("don't stop the reminders", OTHER, None),
    ("Please don't stop!", OTHER, None),
    ("do not unsubscribe me", OTHER, None),
    ("I don't want to unsubscribe", OTHER, None),
    ("never stop sending these, they help", OTHER, None),
    ("don't remove me", OTHER, None),
    ("see you at the end of the week", OTHER, None),
    ("the bus stop on main street?", OTHER, None),
    # opt-in and help
    ("START", IN, "opt_in"),
    ("start", IN, "opt_in"),
    ("UNSTOP", IN, "opt_in"),
    ("YES", IN, "opt_in"),
    ("Yes!", IN, "opt_in"),
    ("yes please", IN, "opt_in"),
    ("HELP", HELP, "help"),
    ("help?", HELP, "help"),
    ("INFO", HELP, "help"),
    ("Ayuda", HELP, "help"),
    # appointment replies: C confirms, R asks to reschedule
    ("C", CONFIRM, "confirm"),
    ("c", CONFIRM, "confirm"),
    ("C.", CONFIRM, "confirm"),
    ("Y", CONFIRM, "confirm"),
    ("confirm", CONFIRM, "confirm"),
    ("Confirmed!", CONFIRM, "confirm"),
    ("C thanks", CONFIRM, "confirm"),
    ("confirmed, thank you 👍", CONFIRM, "confirm"),
    ("yes I'll be there", CONFIRM, "confirm"),
    ("Yes, I will be there", CONFIRM, "confirm"),
    ("See you then!", CONFIRM, "confirm"),
    ("yes that works", CONFIRM, "confirm"),
    ("R", RESCHEDULE, "reschedule"),
    ("r", RESCHEDULE, "reschedule"),
    ("reschedule", RESCHEDULE, "reschedule"),
    ("can we reschedule?", RESCHEDULE, "reschedule"),
    ("need to change my appointment", RESCHEDULE, "reschedule"),
    ("I need a different time", RESCHEDULE, "reschedule"),
    ("I can't make it", RESCHEDULE, "reschedule"),
    ("can I move my appt to Friday", RESCHEDULE, "reschedule"),
    # everything else
    ("", OTHER, None),
    ("   ", OTHER, None),
    ("👍", OTHER, None),
    ("ok", OTHER, None),
    ("Thank you!", OTHER, None),
    ("who is this?", OTHER, None),
    ("What time is my appointment?", OTHER, None),
    ("I can't confirm yet", OTHER, None),
    ("cancel my appointment", OTHER, None),
    ("Para mañana?", OTHER, None),
    ("no", OTHER, None),
    # preference keywords: the whole reply only; an opt-out reading always wins
    ("PAUSE", ReplyKind.PAUSE, "preference"),
    ("pause please", ReplyKind.PAUSE, "preference"),
    ("Resume", ReplyKind.RESUME, "preference"),
    ("pause. STOP", OUT, "free_text"),
]


def test_table_is_large_and_covers_every_kind() -> None:
    assert len(REPLIES) >= 100
    assert {kind for _, kind, _ in REPLIES} == set(ReplyKind)
    assert {cls for _, _, cls in REPLIES} >= {
        "standard", "carrier", "misspelling", "spanish", "free_text", "opt_in", "help", "confirm", "reschedule", None,
    }  # fmt: skip


@pytest.mark.parametrize(("text", "kind", "keyword_class"), REPLIES, ids=[repr(r[0]) for r in REPLIES])
def test_classify_reply(text: str, kind: ReplyKind, keyword_class: str | None) -> None:
    result = classify_reply(text)
    assert (result.kind, result.keyword_class) == (kind, keyword_class)


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("Stop please", "STOP"),
        ("NO MÁS", "NO MAS"),
        ("SOTP", "STOP"),
        ("cancle", "CANCEL"),
        ("Stop texting me pls", "STOP TEXTING"),
        ("please remove me from this list", "REMOVE ME"),
        ("can we reschedule?", "RESCHEDULE"),
    ],
)
def test_matched_names_what_decided(text: str, matched: str) -> None:
    assert classify_reply(text).matched == matched


def test_other_has_no_match() -> None:
    assert classify_reply("who is this?") == Classification(ReplyKind.OTHER, None, None)


def test_fuzzy_matching_can_be_switched_off() -> None:
    policy = KeywordPolicy(fuzzy_single_words=False)
    assert classify_reply("SOTP", policy).kind is ReplyKind.OTHER
    assert classify_reply("STOP", policy).kind is ReplyKind.OPT_OUT  # exact keywords still count


def test_probable_opt_out_policy_is_carried_not_applied() -> None:
    # the classification is the same; the caller suppresses or sends one clarifying message
    for action in ("suppress", "clarify"):
        assert classify_reply("STPO", KeywordPolicy(probable_opt_out=action)).kind is ReplyKind.PROBABLE_OPT_OUT


def test_every_false_friend_is_a_fuzzy_neighbour() -> None:
    # the list holds exactly the words fuzzy matching would otherwise misread
    for word in FALSE_FRIENDS:
        assert any(OSA.distance(word, target) == 1 for target in FUZZY_TARGETS), word


def test_end_is_not_fuzzy_matched() -> None:
    # a three-letter keyword's neighbours are mostly real words
    assert "END" not in FUZZY_TARGETS
    assert classify_reply("EDN").kind is ReplyKind.OTHER


def test_opt_out_wins_over_other_readings() -> None:
    assert classify_reply("C. Also please stop texting me").kind is ReplyKind.OPT_OUT
    assert classify_reply("yes I'll be there, don't stop the reminders").kind is ReplyKind.CONFIRM


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("  Stop!!! ", "STOP"),
        ("NO MÁS", "NO MAS"),
        ("don’t", "DONT"),
        ("STOOOP", "STOP"),
        ("STOOP", "STOOP"),  # a doubled letter is spelling, not emphasis
        ("opt-out 🙏", "OPT OUT"),
    ],
)
def test_normalize(text: str, normalized: str) -> None:
    assert normalize(text) == normalized
