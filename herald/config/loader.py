"""Load and validate a configuration directory, collecting every problem at once.

Each problem reads ``<file>: <field>: <message>`` so a person can go straight to the line
to fix; :func:`load_deployment` raises :class:`ConfigError` carrying all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from herald.config.base import MappingProblems
from herald.config.campaigns import STEP_TAGS, TRIGGER_TYPES, CampaignConfig, check_references
from herald.config.models import COLUMN_TAGS, AttributeColumn, Client, ClientConfig, Deployment, HeraldConfig, LoadMap
from herald.config.segments import SegmentConfig, check_function

HERALD_FILE = "herald.yaml"
CLIENTS_DIR = "clients"
CLIENT_FILE = "client.yaml"
LOAD_MAPS_DIR = "load_maps"
SEGMENTS_DIR = "segments"
CAMPAIGNS_DIR = "campaigns"
TEMPLATES_DIR = "templates"
UNSUBSCRIBE_VAR = "unsubscribe_url"  # as herald.messages.render.UNSUBSCRIBE_VAR

M = TypeVar("M", bound=BaseModel)


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a date-shaped value that is no date (``2026-02-30``)
    stays text, so validation names its key instead of the file failing to load."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _read_yaml(path: Path, root: Path, problems: list[Problem]) -> dict[str, Any] | None:
    rel = _rel(path, root)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ConfigLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problems.append(Problem(rel, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(rel, "(file)", f"cannot be read: {exc}"))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(rel, "(file)", f"must be a mapping of keys to values, not {type(data).__name__}"))
        return None
    return data


def _validate(model: type[M], data: dict[str, Any], rel: str, problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _location(err["loc"])
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, MappingProblems):  # one model check, several fields: one problem each
                for field, message in cause.problems:
                    problems.append(Problem(rel, ".".join(p for p in (loc, field) if p), message))
                continue
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check its spelling)"
            problems.append(Problem(rel, loc or "(file)", msg))
        return None


def _location(loc: tuple[int | str, ...]) -> str:
    """``("columns", "Zip", "FieldColumn", "field")`` → ``"columns.Zip.field"``.

    pydantic puts the union branch after a column's name; the part right after ``columns``
    is the column itself, whatever it is called.
    """
    parts = [
        str(p)
        for i, p in enumerate(loc)
        if not (p in COLUMN_TAGS and i > 0 and loc[i - 1] != "columns")
        and not (p in TRIGGER_TYPES and i > 0 and loc[i - 1] == "trigger")  # the trigger's union branch
        # a step's union branch (message, wait, ...) follows its index in `steps`
        and not (p in STEP_TAGS and i > 1 and isinstance(loc[i - 1], int) and loc[i - 2] == "steps")
    ]
    return ".".join(parts)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent if root.name else root))
    except ValueError:
        return str(path)


def check_config(config_dir: Path) -> tuple[Deployment | None, list[Problem]]:
    """Validate ``config_dir``; returns the deployment (when clean) and every problem."""
    root = config_dir.resolve()
    problems: list[Problem] = []
    if not root.is_dir():
        return None, [Problem(str(config_dir), "(directory)", "does not exist or is not a directory")]

    herald_path = root / HERALD_FILE
    herald = HeraldConfig()
    if herald_path.exists():
        data = _read_yaml(herald_path, root, problems)
        if data is not None:
            herald = _validate(HeraldConfig, data, _rel(herald_path, root), problems) or herald

    clients: dict[str, Client] = {}
    clients_root = root / CLIENTS_DIR
    if not clients_root.is_dir():
        problems.append(Problem(_rel(clients_root, root), "(directory)", "missing: add one folder per client"))
    else:
        for folder in sorted(p for p in clients_root.iterdir() if p.is_dir()):
            client = _load_client(folder, root, herald, problems)
            if client is not None:
                clients[client.client_id] = client
        if not clients and not problems:
            problems.append(Problem(_rel(clients_root, root), "(directory)", "no client folders found"))

    if problems:
        return None, problems
    return Deployment(herald=herald, clients=clients), []


def _load_client(folder: Path, root: Path, herald: HeraldConfig, problems: list[Problem]) -> Client | None:
    client_path = folder / CLIENT_FILE
    rel = _rel(client_path, root)
    if not client_path.exists():
        problems.append(Problem(rel, "(file)", "missing: every client folder needs a client.yaml"))
        return None
    data = _read_yaml(client_path, root, problems)
    config = _validate(ClientConfig, data, rel, problems) if data is not None else None
    if config is not None and config.client_id != folder.name:
        problems.append(Problem(rel, "client_id", f"{config.client_id!r} must match its folder name {folder.name!r}"))
        config = None

    load_maps: dict[str, LoadMap] = {}
    maps_dir = folder / LOAD_MAPS_DIR
    map_files = sorted(maps_dir.glob("*.y*ml")) if maps_dir.is_dir() else []
    if not map_files:
        problems.append(Problem(_rel(maps_dir, root), "(directory)", "no load maps: add load_maps/<packet_type>.yaml"))
    for path in map_files:
        map_rel = _rel(path, root)
        raw = _read_yaml(path, root, problems)
        if raw is None:
            continue
        raw.setdefault("packet_type", path.stem)
        load_map = _validate(LoadMap, raw, map_rel, problems)
        if load_map is None:
            continue
        if load_map.packet_type != path.stem:
            problems.append(
                Problem(map_rel, "packet_type", f"{load_map.packet_type!r} must match the file name {path.stem!r}")
            )
            continue
        load_maps[load_map.packet_type] = load_map
    segments = _load_named(folder / SEGMENTS_DIR, root, SegmentConfig, "name", problems)
    if config is not None and config.ingest_api is not None and len(load_maps) == len(map_files):
        for kind, entity in (("customers", "contacts"), ("funnel_events", "funnel_events")):
            packet_type = getattr(config.ingest_api, kind)
            if packet_type is None:
                continue
            load_map = load_maps.get(packet_type)
            if load_map is None or load_map.entity != entity:
                fitting = ", ".join(sorted(n for n, m in load_maps.items() if m.entity == entity)) or "none"
                message = f"{packet_type!r} is not a {entity} load map of this client ({entity} load maps: {fitting})"
                problems.append(Problem(_rel(folder / "client.yaml", root), f"ingest_api.{kind}", message))
    for name, segment in segments.items():
        if segment.function:
            problem = check_function(segment.function, herald.segment_functions_package)
            if problem:
                path = next(iter(sorted((folder / SEGMENTS_DIR).glob(f"{name}.y*ml"))))
                problems.append(Problem(_rel(path, root), "function", problem))
        if segment.packet_type and segment.packet_type not in _stems(folder / LOAD_MAPS_DIR):
            path = next(iter(sorted((folder / SEGMENTS_DIR).glob(f"{name}.y*ml"))))
            known = ", ".join(sorted(_stems(folder / LOAD_MAPS_DIR))) or "none"
            message = (
                f"no load map {segment.packet_type!r} for this client (load maps: {known}); "
                f"add load_maps/{segment.packet_type}.yaml"
            )
            problems.append(Problem(_rel(path, root), "packet_type", message))
    campaigns = _load_named(folder / CAMPAIGNS_DIR, root, CampaignConfig, "name", problems)
    _check_campaigns(folder, root, config, campaigns, load_maps, len(map_files), problems)
    if config is not None and config.postal_address is None:
        marketing_email = sorted(name for name, c in campaigns.items() if _is_marketing_email(c))
        if marketing_email:
            message = (
                f"client {config.client_id!r} sends marketing email ({', '.join(marketing_email)}) but has no "
                "postal address: CAN-SPAM requires the sender's physical postal address in every marketing "
                "email; add postal_address: '<street, city, state ZIP>'"
            )
            problems.append(Problem(rel, "postal_address", message))
    if config is None:
        return None
    return Client(
        config=config,
        time_zone=config.time_zone or herald.defaults.time_zone,
        default_region=config.default_region or herald.defaults.default_region,
        load_maps=load_maps,
        segments=segments,
        campaigns=campaigns,
        segment_functions_package=herald.segment_functions_package,
    )


def _is_marketing_email(campaign: CampaignConfig) -> bool:
    return campaign.category == "marketing" and any("email" in s.channels for s in campaign.message_steps)


def marketing_email_templates(campaign: CampaignConfig) -> list[str]:
    """The email templates (paths under templates/) a marketing campaign sends."""
    if campaign.category != "marketing":
        return []
    names = {v.template_for("email") for s in campaign.message_steps if "email" in s.channels for v in s.variants}
    return sorted(n for n in names if n)


def config_warnings(config_dir: Path, deployment: Deployment) -> list[Problem]:
    """What ``herald config check`` reports without failing: a marketing email template with no
    unsubscribe link of its own (``{{ unsubscribe_url }}``). Herald still adds one to the footer
    of every email, but readers look for it where the template's author put the other links."""
    root = Path(config_dir).resolve()
    warnings: list[Problem] = []
    for client_id, client in deployment.clients.items():
        templates_dir = root / CLIENTS_DIR / client_id / TEMPLATES_DIR
        seen: set[str] = set()
        for campaign_name, campaign in sorted(client.campaigns.items()):
            for template in marketing_email_templates(campaign):
                path = templates_dir / template
                if template in seen or not path.is_file():
                    continue
                seen.add(template)
                if UNSUBSCRIBE_VAR not in path.read_text(encoding="utf-8", errors="replace"):
                    message = (
                        f"marketing email template of campaign {campaign_name!r} has no unsubscribe link "
                        f"({{{{ {UNSUBSCRIBE_VAR} }}}}); Herald adds one to the footer, put it where readers look"
                    )
                    warnings.append(Problem(_rel(path, root), "(template)", message))
    return warnings


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.y*ml")} if folder.is_dir() else set()


def _check_campaigns(
    folder: Path,
    root: Path,
    config: ClientConfig | None,
    campaigns: dict[str, CampaignConfig],
    load_maps: dict[str, LoadMap],
    map_files: int,
    problems: list[Problem],
) -> None:
    """Cross-file checks: each campaign's segment, packet type, templates and senders exist.

    Segments and load maps count by file, so a file that failed to load is reported once (by
    itself), not again by every campaign naming it.
    """
    templates_dir = folder / TEMPLATES_DIR
    templates = (
        {p.relative_to(templates_dir).as_posix() for p in templates_dir.rglob("*") if p.is_file()}
        if templates_dir.is_dir()
        else set()
    )
    maps_loaded = len(load_maps) == map_files
    date_attributes = {
        target.attribute
        for load_map in load_maps.values()
        for target in load_map.columns.values()
        if isinstance(target, AttributeColumn) and target.type in ("date", "timestamp")
    }
    for name, campaign in campaigns.items():
        path = next(iter(sorted((folder / CAMPAIGNS_DIR).glob(f"{name}.y*ml"))))
        rel = _rel(path, root)
        for field, message in check_references(
            campaign,
            segments=_stems(folder / SEGMENTS_DIR),
            load_maps=_stems(folder / LOAD_MAPS_DIR),
            templates=templates,
            date_attributes=date_attributes if maps_loaded else None,
            has_funnel_events=any(m.entity == "funnel_events" for m in load_maps.values()) if maps_loaded else None,
            senders=config.senders.model_dump() if config is not None else None,
        ):
            problems.append(Problem(rel, field, message))
        # preferences: the campaign's topic must be one of the client's topics
        if campaign.topic is not None and config is not None:
            topics = [t.name for t in config.topics]
            if campaign.topic not in topics:
                problems.append(Problem(rel, "topic", f"no topic {campaign.topic!r} for this client "
                                                      f"(client.yaml topics: {', '.join(topics)})"))  # fmt: skip


def _load_named(folder: Path, root: Path, model: type[M], key: str, problems: list[Problem]) -> dict[str, M]:
    """Every ``<folder>/<name>.yaml`` as ``model``, its ``key`` field defaulting to (and
    required to match) the file name. An absent folder is simply empty."""
    loaded: dict[str, M] = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        rel = _rel(path, root)
        raw = _read_yaml(path, root, problems)
        if raw is None:
            continue
        raw.setdefault(key, path.stem)
        item = _validate(model, raw, rel, problems)
        if item is None:
            continue
        if getattr(item, key) != path.stem:
            problems.append(Problem(rel, key, f"{getattr(item, key)!r} must match the file name {path.stem!r}"))
            continue
        loaded[path.stem] = item
    return loaded


# the last deployment loaded, by directory, with the state of its files: a long-lived process (a
# tick evaluating twenty sensors, the web service) validates the configuration again only when
# a file changed (~0.1 s a load for the example configuration)
_LOADED: dict[Path, tuple[tuple, Deployment]] = {}


def _files_state(config_dir: Path) -> tuple:
    state = []
    for path in config_dir.rglob("*"):
        try:
            st = path.stat()
        except OSError:  # a broken link: validation names it
            state.append((str(path), None, None))
            continue
        state.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(sorted(state))


def load_deployment(config_dir: Path) -> Deployment:
    """The validated deployment, or :class:`ConfigError` listing every problem."""
    key = Path(config_dir).resolve()
    state = _files_state(key)
    cached = _LOADED.get(key)
    if cached is not None and cached[0] == state:
        return cached[1]
    deployment, problems = check_config(config_dir)
    if deployment is None:
        raise ConfigError(problems)
    _LOADED[key] = (state, deployment)
    return deployment
