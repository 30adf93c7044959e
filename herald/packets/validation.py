"""Great Expectations suites for a landed packet, one per load map.

The suite looks at the landed rows' mapped columns: required fields present, the share of
valid phone numbers (libphonenumber's verdict from landing) and of well-formed emails against
the load map's thresholds, and the row count against the client's optional manifest.
Each outcome becomes a Dagster asset check with its numbers in the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from herald.config.models import LoadMap
from herald.warehouse.connection import Session
from herald.warehouse.schema import RAW_SCHEMA

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"

CHECK_REQUIRED = "required_fields_present"
CHECK_PHONES = "phones_mostly_valid"
CHECK_EMAILS = "emails_mostly_valid"
CHECK_MANIFEST = "row_count_matches_manifest"
VALIDATION_CHECKS = (CHECK_REQUIRED, CHECK_PHONES, CHECK_EMAILS, CHECK_MANIFEST)


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)


def landed_frame(session: Session, packet_id: str, load_map: LoadMap, region: str) -> Any:
    """The packet's landed rows as a pandas DataFrame of canonical fields (plus phone validity)."""
    import pandas as pd

    fields = {f: c for f, c in load_map.field_columns().items() if f in ("phone", "email") or f in load_map.required}
    selects = ["r.line_number"] + [f"nullif(trim(r.row_data ->> ?), '') as {f}" for f in fields]
    params: list[Any] = list(fields.values())
    join = ""
    if "phone" in fields:
        selects.append("p.is_valid as phone_is_valid")
        join = (
            f"left join {RAW_SCHEMA}.phone_numbers p on p.raw_value = trim(r.row_data ->> ?) and p.default_region = ?"
        )
        params += [fields["phone"], region]
    params.append(packet_id)
    columns, rows = session.query(
        f"select {', '.join(selects)} from {RAW_SCHEMA}.packet_rows r {join} where r.packet_id = ?", params
    )
    frame = pd.DataFrame(rows, columns=columns)
    if "phone" in fields:
        # an empty phone is missing, not invalid: GE's ``mostly`` then counts only present numbers
        frame["phone_is_valid"] = frame["phone_is_valid"].astype(object).where(frame["phone"].notna(), None)
    return frame


def validate_packet(frame: Any, load_map: LoadMap, rows_rejected: int, manifest_rows: int | None) -> list[CheckOutcome]:
    """Run the load map's suite on ``frame`` (from :func:`landed_frame`)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("packets")
        .add_dataframe_asset(load_map.packet_type)
        .add_batch_definition_whole_dataframe("landed_rows")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    expect = gx.expectations
    outcomes: list[CheckOutcome] = []

    required = [f for f in load_map.required if f in frame.columns]
    results = [batch.validate(expect.ExpectColumnValuesToNotBeNull(column=f)) for f in required]
    missing = {f: r.result.get("unexpected_count", 0) for f, r in zip(required, results, strict=False)}
    outcomes.append(
        CheckOutcome(
            CHECK_REQUIRED,
            all(r.success for r in results),
            "every landed row has " + (", ".join(required) or "no required fields"),
            {"required_fields": ", ".join(required), **{f"rows_missing_{f}": n for f, n in missing.items()}},
        )
    )
    outcomes.append(
        _share_check(batch, expect, frame, CHECK_PHONES, "phone", load_map.validation.min_valid_phone_share)
    )
    outcomes.append(
        _share_check(batch, expect, frame, CHECK_EMAILS, "email", load_map.validation.min_valid_email_share)
    )

    landed = len(frame)
    if manifest_rows is None:
        outcomes.append(
            CheckOutcome(CHECK_MANIFEST, True, "no manifest was sent with this packet", {"manifest_rows": None})
        )
    else:
        # the manifest counts every row the client sent; rejected rows were sent too
        result = batch.validate(expect.ExpectTableRowCountToEqual(value=manifest_rows - rows_rejected))
        outcomes.append(
            CheckOutcome(
                CHECK_MANIFEST,
                result.success,
                f"manifest says {manifest_rows} rows; file had {landed + rows_rejected}",
                {"manifest_rows": manifest_rows, "rows_in_file": landed + rows_rejected},
            )
        )
    return outcomes


def _share_check(batch: Any, expect: Any, frame: Any, name: str, fieldname: str, minimum: float) -> CheckOutcome:
    if fieldname not in frame.columns:
        return CheckOutcome(name, True, f"the load map maps no {fieldname} column", {"minimum_share": minimum})
    if fieldname == "phone":
        expectation = expect.ExpectColumnValuesToBeInSet(column="phone_is_valid", value_set=[True], mostly=minimum)
    else:
        expectation = expect.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_REGEX, mostly=minimum)
    result = batch.validate(expectation)
    checked = int(result.result.get("element_count", 0)) - int(result.result.get("missing_count", 0) or 0)
    invalid = int(result.result.get("unexpected_count", 0) or 0)
    share = (checked - invalid) / checked if checked else 1.0
    return CheckOutcome(
        name,
        bool(result.success),
        f"{share:.1%} of {checked} {fieldname}s are valid (minimum {minimum:.0%})",
        {"valid_share": round(share, 4), "checked": checked, "invalid": invalid, "minimum_share": minimum},
    )
