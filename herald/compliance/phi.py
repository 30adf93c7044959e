"""PHI guard: find obvious protected health information in a rendered message before it is sent.

Reminders may go out, but identifiers stay out of SMS and email bodies (HIPAA's minimum
necessary standard; docs/compliance.md, PHI guard): SSN-like numbers, dates of birth, medical
record numbers; and, unless the client turns it on, procedure, lab and diagnosis names. The
guard is deliberately narrow: a date is a date of birth only next to DOB/"date of birth"/"born"/
"birthday", an id is an MRN only after a label, so appointment times, prices, phone numbers and
ordinary dates pass.

An excerpt is always masked: the finding is logged as a held message's reason, and the reason
must not leak what it guards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SSN = "ssn"
DATE_OF_BIRTH = "date_of_birth"
MRN = "mrn"
CLINICAL = "clinical"
LABELS = {
    SSN: "SSN-like number",
    DATE_OF_BIRTH: "date of birth",
    MRN: "medical record number",
    CLINICAL: "clinical term",
}

# Procedure, lab and diagnosis wording that says why someone sees a provider. Explicit and
# specific: words with everyday meanings elsewhere ("test results" at a college, "rehab" in
# real estate, "aids" in "hearing aids") are left out.
CLINICAL_TERMS = (
    "root canal", "biopsy", "biopsies", "hiv", "pregnancy test", "pregnancy", "prenatal", "lab result", "lab work",
    "blood test", "blood work", "bloodwork", "chemotherapy", "chemo", "radiation therapy", "diagnosis",
    "diagnoses", "diagnosed", "prognosis", "cancer", "tumor", "tumour", "oncology", "std", "sexually transmitted",
    "hepatitis", "diabetes", "dialysis", "mammogram", "colonoscopy", "mri", "ct scan", "x-ray", "xray",
    "ultrasound", "tooth extraction", "wisdom teeth", "wisdom tooth", "periodontal", "periodontitis",
    "gum disease", "gingivitis", "dental implant", "prescription", "antibiotic", "mental health",
    "psychiatric", "substance abuse", "abortion", "miscarriage", "infertility", "ivf", "vasectomy",
)  # fmt: skip

# 123-45-6789 or 123 45 6789 (one separator throughout), not part of a longer number; a phone
# number groups 3-3-4, so it never matches; nor does a run inside a token or URL.
_SSN_RE = re.compile(r"(?<![\w+-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])")
_SSN_LABELLED_RE = re.compile(r"\b(?:SSN|social security(?: number| no\.?| #)?)[\s:#.-]*(\d{9})\b", re.IGNORECASE)

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"  # 05/06/1980, 5-6-80
    r"|\d{4}-\d{2}-\d{2}"  # 1980-05-06
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"  # May 6, 1980 / May 6th
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?)"  # 6 May 1980
)
_DOB_LABEL = r"(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?: on)?|birthday(?: is| on)?)"
_DOB_RE = re.compile(rf"\b({_DOB_LABEL})[\s:,-]*(?:is\s+|on\s+)?({_DATE})", re.IGNORECASE)
_DOB_AFTER_RE = re.compile(rf"({_DATE})\s*[(\[]?\s*({_DOB_LABEL})\b", re.IGNORECASE)

_MRN_LABEL = r"(?:MRN|medical record(?: number| no\.?| #)?|patient (?:id|number|no\.?|#)|chart (?:number|no\.?|#))"
_MRN_RE = re.compile(rf"\b({_MRN_LABEL})[\s:#.-]*([A-Z0-9-]*\d[A-Z0-9-]*)", re.IGNORECASE)
MRN_MIN_CHARS = 4

_CLINICAL_RE = re.compile(
    r"\b("
    + "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in sorted(CLINICAL_TERMS, key=len, reverse=True))
    + r")(?:e?s)?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PhiFinding:
    kind: str  # ssn | date_of_birth | mrn | clinical
    excerpt: str  # masked: never the identifier itself


def _mask_keep_last(value: str, keep: int) -> str:
    visible = value[-keep:] if keep else ""
    return re.sub(r"[A-Za-z0-9]", "*", value[: len(value) - len(visible)]) + visible


def _mask_all(value: str) -> str:
    return re.sub(r"[A-Za-z0-9]", "*", value)


# Cheap pre-checks, so the expensive patterns run only on texts that could match them (every
# message of a campaign passes the guard): a date-of-birth label word, and the first word of a
# clinical term (alone or with the plural endings the pattern accepts).
_DOB_HINTS = ("dob", "birth", "born")  # looked for with dots removed (D.O.B.)
_CLINICAL_FIRST_WORDS = frozenset(
    word + ending for term in CLINICAL_TERMS for word in [term.lower().split()[0]] for ending in ("", "s", "es")
)
_WORD_RES = (re.compile(r"[a-z0-9]+"), re.compile(r"[a-z0-9'-]+"))  # "biopsy-related" and "x-ray"


def _may_hold_clinical_terms(lowered: str) -> bool:
    return any(not _CLINICAL_FIRST_WORDS.isdisjoint(pattern.findall(lowered)) for pattern in _WORD_RES)


def find_phi(text: str, *, block_clinical_terms: bool = False) -> list[PhiFinding]:
    """Obvious PHI in ``text``, in order of kind; empty when the text is clean."""
    findings: list[PhiFinding] = []
    lowered = text.lower()
    for found in _SSN_RE.finditer(text):
        findings.append(PhiFinding(SSN, f"***-**-{found.group(4)}"))
    for found in _SSN_LABELLED_RE.finditer(text):
        findings.append(PhiFinding(SSN, f"***-**-{found.group(1)[-4:]}"))
    seen_dates: set[tuple[int, int]] = set()
    undotted = lowered.replace(".", "")
    dob_hint = any(hint in undotted for hint in _DOB_HINTS)
    for found in _DOB_RE.finditer(text) if dob_hint else ():
        seen_dates.add(found.span(2))
        findings.append(PhiFinding(DATE_OF_BIRTH, f"{found.group(1)} {_mask_all(found.group(2))}"))
    for found in _DOB_AFTER_RE.finditer(text) if dob_hint else ():
        if found.span(1) not in seen_dates:
            findings.append(PhiFinding(DATE_OF_BIRTH, f"{_mask_all(found.group(1))} {found.group(2)}"))
    for found in _MRN_RE.finditer(text):
        identifier = found.group(2).strip("-")
        if len(identifier) >= MRN_MIN_CHARS:
            findings.append(PhiFinding(MRN, f"{found.group(1)} {_mask_keep_last(identifier, 2)}"))
    if block_clinical_terms and _may_hold_clinical_terms(lowered):
        for found in _CLINICAL_RE.finditer(text):
            findings.append(PhiFinding(CLINICAL, " ".join(found.group(0).lower().split())))
    return findings


def phi_reason(findings: Iterable[PhiFinding]) -> str:
    """A held message's reason, e.g. ``PHI guard: SSN-like number (***-**-6789)``."""
    parts = [f"{LABELS.get(f.kind, f.kind)} ({f.excerpt})" for f in dict.fromkeys(findings)]
    return "PHI guard: " + "; ".join(parts)
