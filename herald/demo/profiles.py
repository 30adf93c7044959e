"""Each example client's flavour: its id format, file encoding and line ends, area codes, phone
styles, names, ZIP codes, date style and yes/no spelling, plus the value pools every client draws
from. Everything here is data; :mod:`herald.demo.values` turns it into cell values."""

from __future__ import annotations

from dataclasses import dataclass

PHONE_STYLES: dict[str, str] = {
    "paren": "({a}) {e}-{l}",
    "dash": "{a}-{e}-{l}",
    "dot": "{a}.{e}.{l}",
    "intl": "+1 {a} {e} {l}",
    "e164": "+1{a}{e}{l}",
    "digits": "{a}{e}{l}",
    "one": "1-{a}-{e}-{l}",
}

# Every US area code here validates with libphonenumber for 555-0100…555-0199 (checked).
US_AREA_CODES: tuple[str, ...] = tuple(
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240 "
    "248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313 314 "
    "315 316 317 318 319 320 321 323 330 334 336 337 339 347 351 352 360 361 385 386 401 402 404 405 406 "
    "407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 443 469 470 475 478 479 480 "
    "484 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 "
    "567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 "
    "620 623 626 630 631 636 641 646 650 651 660 661 662 678 682 701 702 703 704 706 707 708 712 713 714 "
    "715 716 717 718 719 720 724 727 731 732 734 737 740 754 757 760 763 765 770 772 773 774 775 781 785 "
    "786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 848 850 "
    "856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 907 908 909 910 912 913 914 915 916 "
    "917 918 919 920 925 928 931 936 937 940 941 947 949 951 952 954 956 970 971 972 973 978 979 980 985 "
    "989".split()
)

EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "inbox.example.net")
INVALID_PHONES = ("555-12", "n/a", "123-456-7890")
# (first name, email) of rows whose email is malformed
INVALID_EMAILS = (("Jane", "jane@"), ("Bob", "bob at example.com"), ("Chris", "chris.p@example,com"))
STAGES = ("inquiry", "applied", "admitted", "enrolled")


@dataclass(frozen=True)
class Profile:
    id_prefix: str
    id_digits: int
    encoding: str
    line_terminator: str
    area_codes: tuple[tuple[str, int], ...]  # (area code, weight) of the client's region
    phone_styles: tuple[str, ...]  # weighted by repetition
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    zips: tuple[str, ...]
    date_style: str = "iso"  # "us": 12/03/2026 and 12/03/2026 9:30 AM; "iso": 2026-12-03 and 2026-12-03T09:30:00
    booleans: tuple[tuple[str, str], ...] = (("true", "false"),)
    file_stem: str = ""


_AUSTIN_FIRST = (
    "James", "Maria", "José", "Sofía", "Emily", "Michael", "Ana", "Daniel", "Olivia", "Luis", "Isabella",
    "David", "Camila", "Ethan", "Grace", "Carlos", "Priya", "Minh", "Jasmine", "Noah", "Ava", "Mateo",
    "Lucía", "Robert", "Hannah", "Andrés", "Chloe", "Samuel", "Valeria", "William", "Aaliyah", "Kevin",
    "Mei", "Tyler", "Ximena", "Brandon", "Fatima", "Elijah", "Renée", "Diego", "Megan", "Jorge", "Linda",
)
_AUSTIN_LAST = (
    "García", "Martínez", "Rodríguez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez",
    "Flores", "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Nguyen", "Tran", "Patel", "Kim", "O'Brien", "Muñoz", "Peña",
    "Castillo", "Reyes", "Morales", "Ortiz", "Gutiérrez", "Walker", "Hall", "Young", "King", "Wright",
    "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
)
_AUSTIN_ZIPS = (
    "78701", "78702", "78703", "78704", "78705", "78723", "78727", "78731", "78741", "78744", "78745",
    "78748", "78749", "78750", "78751", "78753", "78757", "78759", "78613", "78641", "78660", "78664",
    "78665", "78681", "78717", "78726",
)

# Everything here must encode in windows-1252 (é ñ ë è ü ø å ’ – all do).
_DENVER_FIRST = (
    "José", "Zoë", "Renée", "François", "Chloé", "Inés", "Jürgen", "Björn", "Ángel", "Noémie", "Raphaël",
    "Søren", "Amélie", "Ryan", "Megan", "Jessica", "Matthew", "Ashley", "Andrew", "Lauren", "Joshua",
    "Sarah", "Christopher", "Rachel", "Justin", "Katie", "Brian", "Amanda", "Kyle", "Emma", "Logan",
    "Madison", "Connor", "Natalie", "Tyler", "Brooke", "Dylan", "Hailey",
)
_DENVER_LAST = (
    "Peña", "Lefèvre", "Côté", "Dubois", "Müller", "Åström", "Domínguez", "Núñez", "Gómez", "Schäfer",
    "Ødegaard", "Brontë", "O’Connor", "Anderson", "Thompson", "Martin", "Lee", "Clark", "Lewis", "Robinson",
    "Walker", "Allen", "Wright", "Hughes", "Foster", "Bennett", "Sullivan", "Russell", "Hayes", "Fischer",
    "Olson", "Peterson", "Larson", "Gallagher", "Murphy", "Lindqvist", "Vasquez", "Romero",
)
_DENVER_ZIPS = (
    "80202", "80203", "80205", "80206", "80209", "80210", "80211", "80212", "80218", "80220", "80230",
    "80238", "80401", "80110", "80120", "80012", "80226", "80002", "80003", "80301", "80302", "80304",
)
# Out-of-state buyers keep their home ZIP (leading zeros!) and home area code.
RELOCATING = (
    ("617", "02134"), ("617", "02139"), ("857", "02116"), ("201", "07030"), ("203", "06511"),
    ("413", "01002"), ("413", "01060"), ("212", "10025"), ("415", "94110"),
)

_NY_FIRST = (
    "Ava", "Liam", "Sophia", "Jayden", "Mia", "Ethan", "Aaliyah", "Daniel", "Isabella", "Kevin", "Zoë",
    "Łukasz", "Thảo", "Siobhán", "Chidi", "Ana-Sofía", "Mohammed", "Priya", "Wei", "Yuki", "Jamal",
    "Gabriela", "Noah", "Emma", "Darius", "Nia", "Mateo", "Fatoumata", "Aditya", "Hana", "Tomás", "Olivia",
    "Malik", "Sakura", "Ibrahim", "Leah", "Xavier", "Maya", "Jordan", "Camille",
)
_NY_LAST = (
    "Nguyễn", "Kowalski", "O'Sullivan", "Okafor", "Rodríguez", "Thompson", "Chen", "Wang", "Kim", "Park",
    "Singh", "Shah", "Johnson", "Williams", "Brown", "Davis", "Cohen", "Goldberg", "Rossi", "Russo",
    "Diallo", "Mensah", "Haddad", "Khan", "Ali", "Murphy", "Kelly", "Sullivan", "Ramos", "Cruz", "Dvořák",
    "Jovanović", "Müller", "Andersson", "Tanaka", "Sato", "Baptiste", "Pierre", "Jean-Louis", "Washington",
)
_NY_ZIPS = ("10025", "10027", "11201", "11215", "10463", "11375", "10301", "12203", "14607", "07030", "02134")

_GENERIC = Profile(
    id_prefix="C", id_digits=6, encoding="utf-8", line_terminator="\n",
    area_codes=(("512", 1), ("303", 1), ("617", 1), ("212", 1), ("720", 1), ("737", 1), ("857", 1)),
    phone_styles=("paren", "dash", "intl"), first_names=_AUSTIN_FIRST, last_names=_AUSTIN_LAST,
    zips=_AUSTIN_ZIPS + _DENVER_ZIPS,
)

_PROFILES: dict[tuple[str, str], Profile] = {
    ("bright_smiles_dental", "appointments"): Profile(
        id_prefix="P", id_digits=6, encoding="utf-8", line_terminator="\r\n",
        area_codes=(("512", 6), ("737", 3), ("210", 1), ("254", 1), ("830", 1)),
        phone_styles=("paren",) * 5 + ("dash", "dash", "dot", "intl", "digits"),
        first_names=_AUSTIN_FIRST, last_names=_AUSTIN_LAST, zips=_AUSTIN_ZIPS, date_style="us",
        booleans=(("Yes", "No"),) * 3 + (("Y", "N"), ("true", "false")), file_stem="appointments",
    ),
    ("lakeside_realty", "buyer_leads"): Profile(
        id_prefix="LR-", id_digits=5, encoding="windows-1252", line_terminator="\r\n",
        area_codes=(("303", 5), ("720", 5), ("970", 1), ("719", 1)),
        phone_styles=("dash",) * 4 + ("paren", "paren", "intl", "dot"),
        first_names=_DENVER_FIRST, last_names=_DENVER_LAST, zips=_DENVER_ZIPS, date_style="us",
        booleans=(("Yes", "No"),) * 2 + (("Y", "N"), ("true", "false")), file_stem="buyer_leads",
    ),
    ("northfield_college", "leads"): Profile(
        id_prefix="NF", id_digits=6, encoding="utf-8-sig", line_terminator="\n",
        area_codes=(("212", 3), ("646", 2), ("718", 3), ("917", 2), ("347", 2), ("516", 1), ("914", 1),
                    ("518", 1), ("585", 1), ("201", 1), ("973", 1)),
        phone_styles=("e164",) * 3 + ("paren", "dot", "dash"),
        first_names=_NY_FIRST, last_names=_NY_LAST, zips=_NY_ZIPS, date_style="iso",
        booleans=(("true", "false"),) * 4 + (("TRUE", "FALSE"),), file_stem="leads",
    ),
    ("northfield_college", "funnel_events"): Profile(
        id_prefix="NF", id_digits=6, encoding="utf-8", line_terminator="\n",
        area_codes=(("212", 1), ("646", 1), ("718", 1)), phone_styles=("e164",),
        first_names=_NY_FIRST, last_names=_NY_LAST, zips=_NY_ZIPS, date_style="iso", file_stem="funnel_events",
    ),
}


def profile_for(client_id: str, packet_type: str) -> Profile:
    return _PROFILES.get((client_id, packet_type), _GENERIC)


POOLS: dict[str, tuple[str, ...]] = {
    "appointment_type": ("Cleaning",) * 6 + ("Exam", "Exam", "Filling", "Crown Prep", "Root Canal",
                                             "Whitening Consult", "Ortho Consult", "Emergency", "X-Rays"),
    "provider_name": ("Dr. Anika Rao, DDS", "Dr. Marcus Hale, DDS", "Dr. Elena Ruiz, DMD", "Jenna Ortiz, RDH",
                      "Kim Tran, RDH"),
    "location_name": ("South Congress", "South Congress", "Round Rock", "Cedar Park"),
    "property_city": ("Denver", "Denver", "Denver", "Aurora", "Lakewood", "Boulder", "Golden", "Littleton",
                      "Englewood", "Arvada", "Highlands Ranch"),
    "listing_status": ("For Sale",) * 5 + ("Coming Soon", "Price Reduced", "Price Reduced", "Pending",
                                           "Under Contract – Backup Offers", "Short Sale", "Auction"),
    "program": ("B.S. Nursing", "B.S. Nursing", "B.A. Psychology", "B.S. Computer Science",
                "Business Administration, MBA", "B.S. Biology", "A.A.S. Cybersecurity",
                "M.Ed. Curriculum & Instruction", "B.F.A. Graphic Design", "Undeclared"),
    "lead_source": ("Website", "Website", "College Fair", "Google Ads", "Instagram", "Referral", "Campus Visit",
                    "Common App", "Niche.com", "High School Counselor"),
    "time_zone": ("America/Chicago", "America/Denver", "America/New_York", "America/Los_Angeles"),
    "funnel_type": ("sales",) * 6 + ("service-delivery",),
}
TAGS: dict[str, tuple[str, ...]] = {
    "buyer_leads": ("garage", "yard", "basement", "mountain views", "walkable", "good schools", "home office",
                    "pool", "new construction", "pet friendly", "light rail"),
    "leads": ("athletics", "study abroad", "honors program", "on-campus housing", "financial aid", "ROTC",
              "music", "research", "internships"),
    "": ("email", "sms", "newsletter", "events", "offers", "updates"),
}
STREETS = (
    "Larimer St", "Blake St", "E Colfax Ave", "Downing St", "Gaylord St", "Tennyson St", "Federal Blvd",
    "Pearl St", "S Broadway", "Lowell Blvd", "Quebec St", "Holly St", "Yosemite St", "Cherry Creek Dr",
    "Wadsworth Blvd", "Kipling St", "W Alameda Ave", "E Evans Ave", "Sheridan Blvd", "Zuni St",
)
