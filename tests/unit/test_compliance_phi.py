"""herald.compliance.phi: obvious PHI is found before send, masked; ordinary text passes."""

from __future__ import annotations

import pytest

from herald.compliance.phi import PhiFinding, find_phi, phi_reason

POSITIVES = [
    ("Your SSN 123-45-6789 is on file.", "ssn", "***-**-6789"),
    ("ssn: 123 45 6789", "ssn", "***-**-6789"),
    ("Social security number 123456789", "ssn", "***-**-6789"),
    ("123-45-6789", "ssn", "***-**-6789"),
    ("DOB: 05/06/1980", "date_of_birth", "DOB **/**/****"),
    ("dob 1980-05-06", "date_of_birth", "dob ****-**-**"),
    ("Date of birth: May 6, 1980", "date_of_birth", "Date of birth *** *, ****"),
    ("born on 6 May 1980", "date_of_birth", "born on * *** ****"),
    ("Happy birthday on Jan 3rd!", "date_of_birth", "birthday on *** ***"),
    ("Patient 05/06/80 (DOB)", "date_of_birth", "**/**/** DOB"),
    ("MRN 00123456", "mrn", "MRN ******56"),
    ("mrn: A-998877", "mrn", "mrn *-****77"),
    ("Medical record #448812", "mrn", "Medical record # ****12"),
    ("patient id: A12345", "mrn", "patient id ****45"),
    ("Patient number 77881", "mrn", "Patient number ***81"),
]

CLINICAL = [
    ("Reminder: your root canal is tomorrow at 10:30.", "root canal"),
    ("Your biopsy results are ready", "biopsy"),
    ("Your lab results are in", "lab results"),
    ("Fasting before your blood test", "blood test"),
    ("Your HIV test", "hiv"),
    ("pregnancy test appointment", "pregnancy test"),
    ("Chemotherapy session Monday", "chemotherapy"),
    ("discuss your diagnosis", "diagnosis"),
    ("X-rays at your visit", "x-rays"),
    ("Wisdom teeth consult", "wisdom teeth"),
]

# Ordinary messages: phone numbers, times, prices, dates without DOB context, portal links.
NEGATIVES = [
    "Bright Smiles Dental: appointment reminder for Sat Nov 21, 03:00 PM. Reply C to confirm or R to reschedule.",
    "Hi Ana, Bright Smiles Dental here: see you Sat Nov 21 at 03:00 PM. Reply C to confirm, R to reschedule.",
    "Call us at 512-555-0100 or +1 512 555 0100 or (512) 555-0100.",
    "Your appointment is at 10:30 on 11/21/2026.",
    "New listing at 42 Lake Rd, Denver for $450,000. Reply for a showing.",
    "Open house 2026-05-06 from 1-3 pm, asking $1,250,000.",
    "Happy birthday, Ana! Enjoy 20% off a cleaning this month.",
    "Born and raised in Denver? Meet our local agents.",
    "Log in to the patient portal to update your details.",
    "Confirmation code 123-456-7890.",
    "Order 123-45-67890 shipped.",
    "https://herald.example/u/abc123-45-6789xyz",
    "Your SAT test results and B.S. Nursing enrollment: reply to this email.",
    "Thanks for your visit! Bring your insurance card next time.",
]


@pytest.mark.parametrize(("text", "kind", "excerpt"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_finds_identifiers(text: str, kind: str, excerpt: str) -> None:
    assert find_phi(text) == [PhiFinding(kind, excerpt)]


@pytest.mark.parametrize(("text", "term"), CLINICAL, ids=[c[0] for c in CLINICAL])
def test_clinical_terms_only_when_blocked(text: str, term: str) -> None:
    assert find_phi(text) == []
    assert find_phi(text, block_clinical_terms=True) == [PhiFinding("clinical", term)]


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_messages_pass(text: str) -> None:
    assert find_phi(text, block_clinical_terms=True) == []


def test_excerpts_never_hold_the_identifier() -> None:
    text = "SSN 123-45-6789, DOB 05/06/1980, MRN 00123456"
    reason = phi_reason(find_phi(text))
    for secret in ("123-45", "123 45", "05/06/1980", "1980", "001234"):
        assert secret not in reason
    assert reason == (
        "PHI guard: SSN-like number (***-**-6789); date of birth (DOB **/**/****); medical record number (MRN ******56)"
    )


def test_reason_names_one_finding() -> None:
    assert phi_reason([PhiFinding("ssn", "***-**-6789")]) == "PHI guard: SSN-like number (***-**-6789)"
    assert phi_reason([PhiFinding("clinical", "root canal")]) == "PHI guard: clinical term (root canal)"
