"""Classify an inbound SMS reply: opt-out, probable opt-out, opt-in, help, confirm, reschedule.

The FCC (47 CFR 64.1200(a)(10), since 11 Apr 2025) counts *any reasonable means* of revoking
consent, while providers only block single-word keywords; so Herald reads the reply itself.
Where two readings compete, the stricter one wins: an opt-out beats every other reading.

How a reply is read, in order (first hit wins):

1. The whole reply is a keyword (after normalizing case, accents, punctuation, emoji, letters
   repeated three or more times): ``standard`` (CTIA/Twilio/FCC list), ``carrier`` (REMOVE,
   ARRET, TD) or ``spanish`` opt-out; then opt-in, help, confirm, reschedule keywords.
2. Opt-out wording anywhere in the reply, unless negated ("don't stop the reminders"): a
   sentence that is an opt-out keyword with polite filler ("Stop please", "Wrong number. STOP"),
   or a revocation phrase ("stop texting me", "remove me from this list", "no more texts").
   These are ``free_text`` (``spanish`` for Spanish phrases): more than a bare keyword, so a
   provider's own keyword blocking did not see them; only Herald does.
3. A one-word reply within optimal-string-alignment distance 1 of STOP, STOPALL, QUIT, CANCEL,
   UNSUBSCRIBE, OPTOUT or REVOKE is a PROBABLE_OPT_OUT (``misspelling``: SOTP, STPO, STP), unless
   it is a different English word (:data:`FALSE_FRIENDS`: SHOP, STEP, TOP, QUITE, CANCER...). A
   dictionary word is a word, not a typo; its own inflections (STOPS, QUITS) stay opt-outs. END
   is not fuzzy-matched: a three-letter keyword's distance-1 neighbours are mostly real words
   (AND, SEND, BEND, ENDS). What to do with a probable opt-out is :class:`KeywordPolicy`'s.
   PAUSE and RESUME (preference keywords) come last among the keywords.
4. Confirmation and rescheduling wording ("yes I'll be there", "can we reschedule?").

YES is both a CTIA opt-in keyword and a natural "yes": a bare YES is OPT_IN (the keyword
lists say so, and it is the only way back for a suppressed contact); YES with more words
("yes I'll be there") is CONFIRM; Y is CONFIRM. A caller answering an appointment reminder for a
contact who is *not* suppressed may treat OPT_IN as a confirmation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from rapidfuzz.distance import OSA


class ReplyKind(StrEnum):
    OPT_OUT = "opt_out"
    PROBABLE_OPT_OUT = "probable_opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CONFIRM = "confirm"
    RESCHEDULE = "reschedule"
    PAUSE = "pause"  # preferences: marketing paused for KEYWORD_PAUSE_DAYS (herald.compliance.preferences)
    RESUME = "resume"  # preferences: the pause lifted
    OTHER = "other"


@dataclass(frozen=True)
class KeywordPolicy:
    fuzzy_single_words: bool = True  # OSA distance 1 on single-word replies
    # what the caller should do with PROBABLE_OPT_OUT: suppress, or send one clarifying message
    probable_opt_out: Literal["suppress", "clarify"] = "suppress"


@dataclass(frozen=True)
class Classification:
    kind: ReplyKind
    # standard | carrier | misspelling | spanish | free_text | opt_in | help | confirm | reschedule | None
    keyword_class: str | None
    matched: str | None  # the keyword or phrase that decided it


# -- keyword lists (docs/compliance.md) ----------------------------------------------------

STANDARD_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"})
CARRIER_OPT_OUT = frozenset({"REMOVE", "ARRET", "TD"})
SPANISH_OPT_OUT = frozenset({"PARA", "ALTO", "BASTA", "CANCELAR", "NO MAS"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO", "AYUDA"})
CONFIRM = frozenset({"C", "Y", "CONFIRM", "CONFIRMED", "CONFIRMING", "I CONFIRM", "YES CONFIRM", "YES CONFIRMED"})
RESCHEDULE = frozenset({"R", "RESCHEDULE", "RESCHEDULING", "RESCHED", "RESCHEDULE PLEASE"})
# Preference keywords (the same model as the preference page): a bare PAUSE pauses marketing,
# RESUME lifts the pause. Only the whole reply counts, and every opt-out reading is tried first.
PAUSE = frozenset({"PAUSE", "PAUSE PLEASE"})
RESUME = frozenset({"RESUME", "UNPAUSE"})

# Keywords so unambiguous that a sentence consisting of only one of them (plus filler) is an
# opt-out even inside a longer reply ("Wrong number. STOP"), and "no more" (English NO MAS).
# CANCEL/END/QUIT are left out:
# "Cancel, I can't make it" is about the appointment.
SENTENCE_OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT", "OPT OUT", "REVOKE", "NO MORE"})

FUZZY_TARGETS = ("STOP", "STOPALL", "QUIT", "CANCEL", "UNSUBSCRIBE", "OPTOUT", "REVOKE")
FUZZY_MIN_LENGTH = 3
# English words within OSA distance 1 of a fuzzy target that are not inflections of it. A
# reply of one of these is that word. (SPOT, POST are distance 2 from STOP: never fuzzy hits.)
FALSE_FRIENDS = frozenset(
    {
        # STOP
        "SHOP", "STEP", "TOP", "STOW", "STOOP", "STOMP", "STROP", "SWOP", "SLOP", "ATOP", "SOP", "STOA",
        # QUIT
        "QUITE", "QUIET", "QUIZ", "QUID", "QUIP", "QUILT", "QUOIT", "SUIT", "QUINT",
        # CANCEL
        "CANCER",
    }
)  # fmt: skip

# Words that do not change what a short reply means: "Stop please", "STOP thank you", "basta ya".
FILLER = frozenset(
    {
        "PLEASE", "PLS", "PLZ", "PLEAS", "PLEASEE", "THANKS", "THANK", "YOU", "THX", "TY", "OK", "OKAY",
        "JUST", "NOW", "ASAP", "IMMEDIATELY", "ALREADY", "ALL", "SIR", "MAAM", "HI", "HEY", "HELLO",
        "POR", "FAVOR", "YA", "GRACIAS",
    }
)  # fmt: skip

# Words that may stand between a negator and the verb it negates ("don't want to unsubscribe").
_NEGATION_GAP = frozenset(
    {"WANT", "WANNA", "TO", "NEED", "WISH", "LIKE", "PLEASE", "PLS", "I", "YOU", "U", "EVER", "REALLY", "THINK",
     "EVEN", "WOULD"}
)  # fmt: skip
_NEGATORS = frozenset(
    {"DONT", "NOT", "NEVER", "DIDNT", "DOESNT", "WONT", "CANT", "CANNOT", "SHOULDNT", "WOULDNT", "DNT", "NO"}
)  # fmt: skip
# For opt-out phrases "no" is not a negator: "no stop texting me" still revokes.
_OPT_OUT_NEGATORS = _NEGATORS - {"NO"}

_MESSAGES = r"(?:TEXTS?|TXTS?|MESSAGES?|MSGS?|REMINDERS?|NOTIFICATIONS?|ALERTS?|EMAILS?|SPAM|SMS|PROMOTIONS?|ADS)"
_CONTACT_VERBS = r"(?:TEXT|TXT|MESSAGE|MSG|CONTACT|CALL|EMAIL|SMS|BOTHER|SPAM|BUG)"


@dataclass(frozen=True)
class _Phrase:
    pattern: re.Pattern[str]
    kind: ReplyKind
    keyword_class: str
    negatable: bool  # a negator just before it cancels it ("don't stop the reminders")


def _phrase(regex: str, kind: ReplyKind, keyword_class: str, *, negatable: bool = True) -> _Phrase:
    return _Phrase(re.compile(rf"\b(?:{regex})\b"), kind, keyword_class, negatable)


_O, _P, _C, _R = ReplyKind.OPT_OUT, ReplyKind.PROBABLE_OPT_OUT, ReplyKind.CONFIRM, ReplyKind.RESCHEDULE

OPT_OUT_PHRASES = (
    _phrase(r"(?:STOP|QUIT|CEASE) (?:SENDING|TEXTING|TXTING|MESSAGING|MSGING|CONTACTING|CALLING|EMAILING"
            r"|SPAMMING|BOTHERING|HARASSING|BUGGING)", _O, "free_text"),
    _phrase(rf"STOP(?: (?:THE|THESE|THOSE|THIS|THAT|YOUR|UR|ALL|ANY|OF|WITH))* {_MESSAGES}", _O, "free_text"),
    _phrase(r"STOP (?:IT|THIS|THAT|THEM|NOW)", _O, "free_text"),
    _phrase(r"(?:SAID|SAY|SAYING|TOLD YOU|MAKE IT|MAKE THEM|MAKE THIS|JUST|PLEASE|PLS|PLZ|YES|NO|OK|OKAY)"
            r" STOP(?! (?:BY|IN|AT|OVER|ON|AND)\b)", _O, "free_text"),
    _phrase(r"UN ?SUBSCRIB\w*|UNSUB|OPTOUT|OPT (?:ME )?OUT|OPTED OUT", _O, "free_text"),
    _phrase(r"REMOVE (?:ME|US|MY (?:NUMBER|PHONE|CELL|EMAIL|INFO))", _O, "free_text"),
    _phrase(r"TAKE (?:ME|MY NUMBER|THIS NUMBER|US) OFF", _O, "free_text"),
    _phrase(r"(?:LOSE|DELETE|ERASE) (?:MY|THIS) (?:NUMBER|PHONE NUMBER|CONTACT|INFO)", _O, "free_text"),
    _phrase(rf"CANCEL (?:MY |THE |THESE |ALL |ALL THE |YOUR )?(?:SUBSCRIPTION|{_MESSAGES})", _O, "free_text"),
    _phrase(rf"(?:DONT|DO NOT|NEVER|NO LONGER) {_CONTACT_VERBS} (?:ME|US|THIS NUMBER)", _O, "free_text", negatable=False),
    _phrase(rf"(?:DONT|DO NOT|NO LONGER) (?:WANT|NEED|WISH TO RECEIVE)"
            rf" (?:ANY MORE |ANYMORE |ANY |THESE |THOSE |YOUR |THE |MORE )?{_MESSAGES}", _O, "free_text", negatable=False),
    _phrase(rf"(?:NO MORE|ENOUGH) {_MESSAGES}", _O, "free_text", negatable=False),
    _phrase(r"LEAVE ME ALONE", _O, "free_text", negatable=False),
    _phrase(r"WRONG (?:NUMBER|PERSON)", _O, "free_text", negatable=False),
    # Spanish
    _phrase(r"NO MAS (?:MENSAJES|TEXTOS|SMS)", _O, "spanish", negatable=False),
    _phrase(r"NO (?:ME |NOS )?(?:ENVIE|ENVIEN|MANDE|MANDEN|ESCRIBA|ESCRIBAN|ENVIES|MANDES)\w*", _O, "spanish", negatable=False),
    _phrase(r"(?:DEJ|PAR)(?:A|E|EN) DE (?:ENVIAR|MANDAR|ESCRIBIR)\w*", _O, "spanish", negatable=False),
    _phrase(r"(?:DARME|DAR|DENME|DEME) DE BAJA", _O, "spanish", negatable=False),
    # likely, not certain: the policy decides
    _phrase(r"(?:IM |I AM )?(?:NOT|NO LONGER) INTERESTED", _P, "free_text", negatable=False),
)  # fmt: skip

REPLY_PHRASES = (
    _phrase(r"RE ?SCHEDUL\w*|RESCHED", _R, "reschedule"),
    _phrase(r"(?:CHANGE|MOVE|SWITCH|PUSH|REBOOK)(?: \w+){0,3} (?:APPOINTMENT|APPT|TIME|DATE|DAY)", _R, "reschedule"),
    _phrase(r"(?:DIFFERENT|ANOTHER|NEW|LATER|EARLIER) (?:TIME|DAY|DATE|APPOINTMENT|APPT)", _R, "reschedule"),
    _phrase(r"(?:CANT|CANNOT|CAN NOT|WONT BE ABLE TO|UNABLE TO|NOT ABLE TO|COULDNT) (?:MAKE|COME|ATTEND|BE THERE)",
            _R, "reschedule", negatable=False),
    _phrase(r"CONFIRM(?:ED|ING|S)?", _C, "confirm"),
    _phrase(r"(?:ILL|I WILL|WE WILL|WELL|WILL|ILL DEFINITELY|I WILL DEFINITELY) BE THERE", _C, "confirm"),
    _phrase(r"SEE YOU (?:THEN|THERE|SOON|TOMORROW|ON \w+)", _C, "confirm"),
    _phrase(r"YES(?: \w+){0,3} (?:COMING|THERE|WORKS|GOOD|FINE|PERFECT|ATTEND)", _C, "confirm"),
)  # fmt: skip

_APOSTROPHES = str.maketrans({"\u2019": "", "\u2018": "", "'": "", "`": "", "\u00b4": ""})
_STOP_SIGN = "\U0001f6d1"  # 🛑: a reasonable person reads it as "stop"
_NON_WORD_RE = re.compile(r"[^A-Z0-9]+")
_RUN_RE = re.compile(r"([A-Z])\1{2,}")  # three or more of a letter: emphasis, not spelling
_SENTENCE_RE = re.compile(r"[.!?;,:\n\r]+")


def normalize(text: str) -> str:
    """Upper case, no accents, apostrophes dropped, other punctuation and emoji as spaces,
    runs of 3+ identical letters collapsed to one ("STOOOP" → "STOP"; "STOOP" is kept)."""
    text = text.replace(_STOP_SIGN, " STOP ").translate(_APOSTROPHES)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    text = _RUN_RE.sub(r"\1", _NON_WORD_RE.sub(" ", text))
    words = text.split()
    if len(words) >= 3 and all(len(w) == 1 and w.isalpha() for w in words):
        words = ["".join(words)]  # "S T O P"
    return " ".join(words)


def _core(normalized: str) -> str:
    """The reply without leading/trailing filler words; a keyword said twice counts once."""
    words = normalized.split()
    while words and words[0] in FILLER:
        words.pop(0)
    while words and words[-1] in FILLER:
        words.pop()
    if len(words) > 1 and len(set(words)) == 1:
        words = words[:1]  # "STOP STOP STOP"
    return " ".join(words)


def _exact(core: str) -> tuple[ReplyKind, str] | None:
    for keywords, kind, keyword_class in (
        (STANDARD_OPT_OUT, ReplyKind.OPT_OUT, "standard"),
        (CARRIER_OPT_OUT, ReplyKind.OPT_OUT, "carrier"),
        (SPANISH_OPT_OUT, ReplyKind.OPT_OUT, "spanish"),
        (OPT_IN, ReplyKind.OPT_IN, "opt_in"),
        (HELP, ReplyKind.HELP, "help"),
        (CONFIRM, ReplyKind.CONFIRM, "confirm"),
        (RESCHEDULE, ReplyKind.RESCHEDULE, "reschedule"),
        (PAUSE, ReplyKind.PAUSE, "preference"),
        (RESUME, ReplyKind.RESUME, "preference"),
    ):
        if core in keywords:
            return kind, keyword_class
    return None


def _negated(normalized: str, start: int, negators: frozenset[str]) -> bool:
    """Whether the words just before ``start`` negate it: a negator, possibly followed by
    words such as "want to" ("I don't want to unsubscribe")."""
    for word in reversed(normalized[:start].split()):
        if word in negators:
            return True
        if word not in _NEGATION_GAP:
            return False
    return False


def _find_phrase(normalized: str, phrases: tuple[_Phrase, ...], negators: frozenset[str]) -> tuple[_Phrase, str] | None:
    for phrase in phrases:
        for found in phrase.pattern.finditer(normalized):
            if phrase.negatable and _negated(normalized, found.start(), negators):
                continue
            return phrase, found.group(0)
    return None


def _misspelled_opt_out(core: str) -> str | None:
    """The opt-out keyword a one-word reply is a probable misspelling of, if any."""
    if " " in core or len(core) < FUZZY_MIN_LENGTH or core in FALSE_FRIENDS:
        return None
    for target in FUZZY_TARGETS:
        if OSA.distance(core, target, score_cutoff=1) <= 1:
            return target
    return None


def classify_reply(text: str, policy: KeywordPolicy = KeywordPolicy()) -> Classification:
    """What an inbound reply asks for; see the module docstring for the rules and their order."""
    normalized = normalize(text)
    if not normalized:
        return Classification(ReplyKind.OTHER, None, None)
    core = _core(normalized)
    exact = _exact(core)
    if exact is not None:
        kind, keyword_class = exact
        if core != normalized and keyword_class in ("standard", "carrier"):
            keyword_class = "free_text"  # "Stop please": more than the bare keyword
        return Classification(kind, keyword_class, core)

    for sentence in _SENTENCE_RE.split(text):
        sentence_core = _core(normalize(sentence))
        if sentence_core in SENTENCE_OPT_OUT:
            return Classification(ReplyKind.OPT_OUT, "free_text", sentence_core)
        if sentence_core in SPANISH_OPT_OUT:
            return Classification(ReplyKind.OPT_OUT, "spanish", sentence_core)

    found = _find_phrase(normalized, OPT_OUT_PHRASES, _OPT_OUT_NEGATORS)
    if found is not None:
        phrase, matched = found
        return Classification(phrase.kind, phrase.keyword_class, matched)

    if policy.fuzzy_single_words:
        target = _misspelled_opt_out(core)
        if target is not None:
            return Classification(ReplyKind.PROBABLE_OPT_OUT, "misspelling", target)

    found = _find_phrase(normalized, REPLY_PHRASES, _NEGATORS)
    if found is not None:
        phrase, matched = found
        return Classification(phrase.kind, phrase.keyword_class, matched)
    return Classification(ReplyKind.OTHER, None, None)
