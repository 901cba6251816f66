"""Validate the deployment kit under deploy/ (run through ``deploy/check``).

Pieces, each runnable alone:

- ``nginx``: ``nginx -t`` on the site, included in a minimal nginx.conf whose
  pid, logs and temp paths live in a temporary directory (and a throwaway
  self-signed certificate stands in for certbot's), so it runs without root.
- ``rules``: ``promtool check rules`` and ``promtool test rules`` on the alert
  rules, ``promtool check config`` on the example scrape configuration, and
  every rule's severity, annotations and metric names.
- ``dashboard``: the Grafana JSON parses, has the expected structure, and
  every panel's query uses metrics the project really exports.
- ``units``: the systemd units carry what the README promises (user, env
  file, graceful stop, hardening) and ``systemd-analyze verify`` accepts them.
- ``consistency``: the ports nginx balances over, the Prometheus targets and
  the metrics listener agree.

"Really exports" is read from the project itself: Django is set up and every
collector in prometheus_client's registry is asked what it describes, so no
database is needed. Metrics the kit needs but the project does not export yet
are listed in PROPOSED (deploy/README.md, "Metrics the alerts need"); using
one is reported, not failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
SITE = DEPLOY / "nginx" / "ispsupport.conf"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "ispsupport.json"
UNITS = DEPLOY / "systemd"
INSTALL_ROOT = "/srv/ispsupport"
DATASOURCE_UID = "${DS_PROMETHEUS}"

# Series Prometheus itself writes for every target.
EXTERNAL: dict[str, frozenset[str]] = {"up": frozenset()}

# Needed by the alerts and the dashboard, not exported by the project yet:
# name -> its labels (deploy/README.md, "Metrics the alerts need", gives
# each one's exact definition). Empty: every metric the kit reads exists.
PROPOSED: dict[str, frozenset[str]] = {}

# Labels every scraped series has, whatever the metric.
TARGET_LABELS = frozenset({"job", "instance"})
SEVERITIES = frozenset({"critical", "warning"})

# nginx >= 1.25.1 prefers `http2 on;`; Debian 12's 1.22 only knows the listen flag.
TOLERATED_NGINX_WARNINGS = (re.compile(r'the "listen \.\.\. http2" directive is deprecated'),)


class CheckError(Exception):
    """The kit is wrong; the message says where."""


class ToolMissing(Exception):
    """A tool a piece needs (nginx, promtool) is not installed."""


@dataclass
class Report:
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


# --- the project's metrics -----------------------------------------------------

_DISCOVER = r"""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
import django
django.setup()
from prometheus_client import REGISTRY

labels = {}
def add(names, labelnames):
    for name in names:
        labels.setdefault(name, set()).update(labelnames)

for name, collector in list(REGISTRY._names_to_collectors.items()):
    add([name], getattr(collector, "_labelnames", ()))
for collector in set(REGISTRY._names_to_collectors.values()):
    describe = getattr(collector, "describe", None)
    if describe is None:
        continue
    for family in describe():
        own = tuple(getattr(family, "_labelnames", ()) or getattr(collector, "_labelnames", ()))
        kind = family.type
        base = family.name
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"),
            "info": ("_info",),
        }.get(kind, ("",))
        add([base + s for s in suffixes], own)
json.dump({name: sorted(values) for name, values in labels.items()}, sys.stdout)
"""


def exported_metrics() -> dict[str, frozenset[str]]:
    """Every sample name the project's /metrics can show, with its labels."""
    env = os.environ.copy()
    env.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    if "SECRET_KEY" not in env:
        # Only the settings' own validation needs it; nothing is served.
        env["DEBUG"] = "true"
    done = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _DISCOVER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise CheckError(
            "could not load the project to list its metrics (run deploy/check with the "
            f"project's virtualenv, e.g. after `make install`):\n{done.stderr.strip()[-2000:]}"
        )
    raw = json.loads(done.stdout)
    return {name: frozenset(labels) for name, labels in raw.items()}


# --- PromQL: the metric names and labels an expression uses ---------------------

_TOKENS = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-z]*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_OPERATORS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"})
# Aggregations may be followed by `by (...)` before their parenthesis.
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
     "topk", "quantile", "limitk", "limit_ratio"}
)  # fmt: skip


@dataclass
class Selector:
    metric: str
    labels: set[str] = field(default_factory=set)


@dataclass
class Parsed:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def parse_promql(expr: str) -> Parsed:
    """Good enough for names and labels; promtool and Prometheus judge the syntax."""
    tokens = [
        (m.lastgroup, m.group()) for m in _TOKENS.finditer(expr) if m.lastgroup not in ("space",)
    ]
    parsed = Parsed()
    i = 0
    last: Selector | None = None
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text in _GROUPING:
            if following == "(":
                i += 2
                while i < len(tokens) and tokens[i][1] != ")":
                    if tokens[i][0] == "ident":
                        parsed.grouping.add(tokens[i][1])
                    i += 1
            last = None
        elif kind == "ident" and (following == "(" or text in _AGGREGATIONS):
            last = None  # a function or an aggregation
        elif kind == "ident" and text not in _OPERATORS:
            last = Selector(text)
            parsed.selectors.append(last)
        elif text == "{":
            matchers: set[str] = set()
            i += 1
            while i < len(tokens) and tokens[i][1] != "}":
                if tokens[i][0] == "ident" and i + 1 < len(tokens) and tokens[i + 1][1] in "=!~":
                    matchers.add(tokens[i][1])
                i += 1
            if last is None:
                raise CheckError(f"a label matcher without a metric name in: {expr}")
            last.labels |= matchers
        elif kind != "range":
            last = None
        i += 1
    return parsed


def check_expression(
    where: str,
    expr: str,
    exported: dict[str, frozenset[str]],
    proposed_used: set[str],
) -> list[str]:
    """Problems with the metric names and labels of one expression."""
    problems: list[str] = []
    parsed = parse_promql(expr)
    if not parsed.selectors:
        problems.append(f"{where}: no metric in {expr!r}")
    known_labels: set[str] = set(TARGET_LABELS)
    for selector in parsed.selectors:
        name = selector.metric
        if name in exported:
            labels = exported[name]
        elif name in EXTERNAL:
            labels = EXTERNAL[name]
        elif name in PROPOSED:
            labels = PROPOSED[name]
            proposed_used.add(name)
        else:
            problems.append(f"{where}: {name} is not a metric the project exports")
            continue
        allowed = labels | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        known_labels |= allowed
        for label in sorted(selector.labels - allowed):
            problems.append(f"{where}: {name} has no label {label!r}")
    for label in sorted(parsed.grouping - known_labels):
        problems.append(f"{where}: grouping by {label!r}, which none of its metrics has")
    return problems


# --- running tools ---------------------------------------------------------------


def find_tool(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if os.access(candidate, os.X_OK):
            return candidate
    raise ToolMissing(name)


def run_tool(argv: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv built from fixed tool names and our own paths
        argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _show(output: str) -> None:
    for line in output.strip().splitlines():
        if line.strip():
            print(f"    {line.rstrip()}", flush=True)


# --- nginx -------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for nginx -t in place of certbot's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "suporte.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def nginx_test_config(site_text: str, directory: Path, *, main_extra: str = "") -> Path:
    """Write a minimal nginx.conf including ``site_text`` under ``directory``.

    Everything nginx would write (pid, logs, temp files) goes under the
    directory, and certbot's certificate paths point at a throwaway one.
    ``main_extra`` is added to the main context (tests that really run it).
    """
    (directory / "logs").mkdir(exist_ok=True)
    cert, key = _self_signed(directory)
    text = re.sub(r"(\bssl_certificate\s+)[^;]+;", rf"\g<1>{cert};", site_text)
    text = re.sub(r"(\bssl_certificate_key\s+)[^;]+;", rf"\g<1>{key};", text)
    text = text.replace("/var/log/nginx/", f"{directory}/logs/")
    site = directory / "ispsupport.conf"
    site.write_text(text, encoding="utf-8")
    temp = {kind: directory / kind for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""{main_extra}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{
        text/html html; text/css css; application/javascript js; application/json json;
        image/svg+xml svg; image/png png; text/plain txt;
    }}
    default_type application/octet-stream;
    access_log {directory}/logs/access.log;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site};
}}
""",
        encoding="utf-8",
    )
    return conf


def check_nginx(site: Path, report: Report) -> None:
    nginx = find_tool("nginx", "/usr/sbin/nginx")
    with tempfile.TemporaryDirectory(prefix="ispsupport-nginx-") as tmp:
        directory = Path(tmp)
        conf = nginx_test_config(site.read_text(encoding="utf-8"), directory)
        done = run_tool(
            [nginx, "-t", "-p", str(directory), "-c", str(conf), "-e", str(directory / "err.log")]
        )
        output = done.stdout + done.stderr
        _show(output)
        if done.returncode != 0 or "test is successful" not in output:
            raise CheckError(f"nginx -t refused {site}")
        for line in output.splitlines():
            if "[warn]" in line and not any(p.search(line) for p in TOLERATED_NGINX_WARNINGS):
                raise CheckError(f"nginx -t warns about {site}: {line.strip()}")
    text = site.read_text(encoding="utf-8")
    for needed, why in (
        ("proxy_set_header Upgrade $http_upgrade;", "websockets need the Upgrade header"),
        ("proxy_set_header X-Forwarded-Proto $scheme;", "SECURE_PROXY_SSL_HEADER trusts it"),
        ("proxy_set_header Host $host;", "Django checks Host against ALLOWED_HOSTS"),
        ("$proxy_add_x_forwarded_for", "TRUSTED_PROXY_COUNT counts X-Forwarded-For hops"),
    ):
        if needed not in text:
            raise CheckError(f"{site}: missing `{needed}` ({why})")
    # Media is personal data served by a permission-checked view only.
    media = re.search(r"location\s+(?:\^~\s+)?/media/\s*\{([^}]*)\}", text)
    if media is None or re.search(r"\b(alias|root|proxy_pass)\b", media.group(1)):
        raise CheckError(f"{site}: /media/ must answer 404, never expose MEDIA_ROOT")


# --- Prometheus ----------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckError(f"{path} is not valid YAML: {exc}") from None


Metrics = Callable[[], dict[str, frozenset[str]]]


def check_rules(rules: Path, report: Report, metrics: Metrics, *, tests: Path | None) -> None:
    promtool = find_tool("promtool")
    steps = [[promtool, "check", "rules", str(rules)]]
    if tests is not None:
        steps.append([promtool, "test", "rules", str(tests)])
    if rules == RULES:
        steps.append([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    for argv in steps:
        done = run_tool(argv, cwd=rules.parent)
        print(f"  $ promtool {' '.join(argv[1:3])} {Path(argv[3]).name}", flush=True)
        _show(done.stdout + done.stderr)
        if done.returncode != 0:
            raise CheckError(f"promtool {' '.join(argv[1:3])} failed on {argv[3]}")
    problems: list[str] = []
    proposed_used: set[str] = set()
    seen: set[str] = set()
    document = _load_yaml(rules) or {}
    exported = metrics()
    for group in document.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record") or "?"
            where = f"{rules.name}: {name}"
            if "alert" in rule:
                if name in seen:
                    problems.append(f"{where}: alert name used twice")
                seen.add(name)
                severity = (rule.get("labels") or {}).get("severity")
                if severity not in SEVERITIES:
                    problems.append(f"{where}: severity must be one of {sorted(SEVERITIES)}")
                annotations = rule.get("annotations") or {}
                for key in ("summary", "description"):
                    if not str(annotations.get(key, "")).strip():
                        problems.append(f"{where}: no {key} annotation")
            problems += check_expression(where, str(rule.get("expr", "")), exported, proposed_used)
    if not seen:
        problems.append(f"{rules.name}: no alert rules")
    _proposed_note(report, proposed_used, exported, rules.name)
    if problems:
        raise CheckError("\n".join(problems))
    print(f"  {len(seen)} alerts use only metrics the project exports or PROPOSED ones", flush=True)


def _proposed_note(
    report: Report, used: set[str], exported: dict[str, frozenset[str]], where: str
) -> None:
    waiting = sorted(name for name in used if name not in exported)
    if waiting:
        report.note(
            f"{where} uses metrics the project does not export yet: {', '.join(waiting)} "
            "(deploy/README.md, 'Metrics the alerts need')"
        )
    landed = sorted(name for name in PROPOSED if name in exported)
    if landed:
        report.note(f"now exported, drop from PROPOSED in deploy/validate.py: {', '.join(landed)}")


# --- Grafana -------------------------------------------------------------------------------


def _datasource_problems(where: str, datasource: Any) -> list[str]:
    if not isinstance(datasource, dict) or datasource.get("uid") != DATASOURCE_UID:
        return [f"{where}: datasource must be {{'type': 'prometheus', 'uid': '{DATASOURCE_UID}'}}"]
    if datasource.get("type") != "prometheus":
        return [f"{where}: datasource type must be prometheus"]
    return []


def check_dashboard(path: Path, report: Report, metrics: Metrics) -> None:
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckError(f"{path} is not valid JSON: {exc}") from None
    problems: list[str] = []
    for key in ("uid", "title"):
        if not dashboard.get(key):
            problems.append(f"{path.name}: no {key}")
    schema = dashboard.get("schemaVersion")
    if not isinstance(schema, int) or schema < 36:
        problems.append(f"{path.name}: schemaVersion must be 36 or newer (got {schema!r})")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append(f"{path.name}: needs a datasource variable DS_PROMETHEUS (prometheus)")
    panels = list(_panels(dashboard.get("panels", [])))
    exported = metrics()
    if not panels:
        problems.append(f"{path.name}: no panels")
    ids: set[int] = set()
    proposed_used: set[str] = set()
    queries = 0
    for panel in panels:
        title = panel.get("title") or f"panel {panel.get('id')}"
        where = f"{path.name}: {title!r}"
        panel_id = panel.get("id")
        if not isinstance(panel_id, int) or panel_id in ids:
            problems.append(f"{where}: id must be a unique integer")
        ids.add(panel_id)
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")) or (
            grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > 24
        ):
            problems.append(f"{where}: gridPos must be integers within 24 columns")
        if panel.get("type") == "row":
            continue
        problems += _datasource_problems(where, panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{where}: every query needs its own refId")
        for target in targets:
            problems += _datasource_problems(
                f"{where} {target.get('refId')}", target.get("datasource")
            )
            expr = str(target.get("expr") or "")
            if not expr.strip():
                problems.append(f"{where}: query {target.get('refId')} has no expr")
                continue
            queries += 1
            problems += check_expression(where, expr, exported, proposed_used)
    _proposed_note(report, proposed_used, exported, path.name)
    if problems:
        raise CheckError("\n".join(problems))
    shown = sum(1 for panel in panels if panel.get("type") != "row")
    print(f"  {shown} panels, {queries} queries over exported metrics", flush=True)


def _panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


# --- systemd ----------------------------------------------------------------------------


def _unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


_HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
}


def check_units(units: Path, report: Report) -> None:
    services = sorted(units.glob("*.service"))
    if not services:
        raise CheckError(f"no .service files in {units}")
    problems: list[str] = []
    for path in services:
        unit = _unit_settings(path)
        where = path.name

        def first(key: str, unit: dict[str, list[str]] = unit) -> str:
            return unit.get(key, [""])[0]

        for key, value in (
            ("User", "ispsupport"),
            ("EnvironmentFile", "/etc/ispsupport/env"),
            ("WorkingDirectory", INSTALL_ROOT),
            ("StateDirectory", "ispsupport"),
            *_HARDENING.items(),
        ):
            if first(key) != value:
                problems.append(f"{where}: {key}={value} expected (got {first(key)!r})")
        exec_start = " ".join(unit.get("ExecStart", []))
        if not exec_start:
            problems.append(f"{where}: no ExecStart")
        if first("Type") != "oneshot":
            for key, value in (("Restart", "on-failure"), ("KillSignal", "SIGTERM")):
                if first(key) != value:
                    problems.append(f"{where}: {key}={value} expected")
            if not first("TimeoutStopSec"):
                problems.append(f"{where}: TimeoutStopSec must give work in flight time to end")
        if where.startswith("ispsupport-web@"):
            if "--bind 127.0.0.1 --port %i" not in exec_start:
                problems.append(f"{where}: daphne must bind 127.0.0.1 on the instance's port")
            if "--proxy-headers" in exec_start:
                problems.append(
                    f"{where}: --proxy-headers trusts the client-written X-Forwarded-For "
                    "entry; the application reads it with TRUSTED_PROXY_COUNT"
                )
        if where.startswith("ispsupport-worker@") and "manage.py worker" not in exec_start:
            problems.append(f"{where}: the worker runs manage.py worker")
    if not (units / "ispsupport.target").is_file():
        problems.append("ispsupport.target is missing")
    if problems:
        raise CheckError("\n".join(problems))
    print(f"  {len(services)} services carry user, env file, stop and hardening settings")
    _systemd_verify(units, report)


def _systemd_verify(units: Path, report: Report) -> None:
    try:
        analyze = find_tool("systemd-analyze")
    except ToolMissing:
        report.note("systemd-analyze is not installed: unit syntax not verified")
        return
    with tempfile.TemporaryDirectory(prefix="ispsupport-units-") as tmp:
        directory = Path(tmp)
        fake_root = directory / "root"
        # verify insists that every Exec binary exists: stand-ins under a
        # temporary install root, the units pointed at it.
        names: list[str] = []
        for path in sorted(units.iterdir()):
            if path.suffix not in (".service", ".target", ".timer"):
                continue
            text = path.read_text(encoding="utf-8")
            for binary in set(re.findall(rf"{re.escape(INSTALL_ROOT)}/\S+", text)):
                stub = fake_root / binary.removeprefix(INSTALL_ROOT + "/")
                if "/bin/" in binary:
                    stub.parent.mkdir(parents=True, exist_ok=True)
                    stub.write_text("#!/bin/sh\n", encoding="utf-8")
                    stub.chmod(0o755)
            (directory / path.name).write_text(
                text.replace(INSTALL_ROOT, str(fake_root)), encoding="utf-8"
            )
            names.append(path.name.replace("@.", "@9101." if "worker" in path.name else "@8001."))
        done = run_tool([analyze, "verify", *[f"./{n}" for n in names]], cwd=directory)
        output = (done.stdout + done.stderr).strip()
        _show(output)
        if done.returncode != 0 or re.search(
            r"Unknown (key|section|lvalue)|Invalid|Failed", output
        ):
            raise CheckError("systemd-analyze verify refused the units")
    print(f"  systemd-analyze verify: {len(names)} units ok", flush=True)


# --- cross-file consistency -----------------------------------------------------------


def check_consistency(site: Path, report: Report) -> None:
    text = site.read_text(encoding="utf-8")
    upstream = re.search(r"upstream\s+ispsupport\s*\{([^}]*)\}", text)
    if upstream is None:
        raise CheckError(f"{site.name}: no `upstream ispsupport` block")
    web_ports = sorted(
        int(p) for p in re.findall(r"server\s+127\.0\.0\.1:(\d+)", upstream.group(1))
    )
    metrics = re.search(r'location\s+~\s+"(\^/metrics/[^"]+)"', text)
    if metrics is None:
        raise CheckError(f"{site.name}: no metrics listener location")
    # nginx (PCRE) names a capture (?<name>...), Python (?P<name>...).
    pattern = re.compile(metrics.group(1).replace("(?<", "(?P<"))
    config = _load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    problems: list[str] = []
    targets: dict[str, list[int]] = {}
    for name in ("ispsupport-web", "ispsupport-worker"):
        job = jobs.get(name)
        if job is None:
            problems.append(f"prometheus.yml: no job {name}")
            continue
        targets[name] = sorted(
            int(t.rsplit(":", 1)[1]) for sc in job["static_configs"] for t in sc["targets"]
        )
        for port in targets[name]:
            if not pattern.match(f"/metrics/{port}"):
                problems.append(
                    f"prometheus.yml: {name} port {port} is not served by nginx's metrics listener"
                )
    if targets.get("ispsupport-web") != web_ports:
        problems.append(
            f"nginx balances over {web_ports} but Prometheus scrapes "
            f"{targets.get('ispsupport-web')}"
        )
    if problems:
        raise CheckError("\n".join(problems))
    print(
        f"  web ports {web_ports}, workers {targets.get('ispsupport-worker')}: nginx "
        "and Prometheus agree",
        flush=True,
    )


# --- main ---------------------------------------------------------------------------------

PIECES = ("nginx", "rules", "dashboard", "units", "consistency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/check",
        description="Validate the deployment kit: nginx site, alert rules, Grafana dashboard, "
        "systemd units.",
    )
    parser.add_argument(
        "pieces", nargs="*", help=f"what to check: {', '.join(PIECES)} or all (default: all)"
    )
    parser.add_argument("--site", type=Path, default=SITE, help="nginx site to check")
    parser.add_argument("--rules", type=Path, default=RULES, help="alert rules to check")
    parser.add_argument(
        "--rule-tests",
        type=Path,
        default=None,
        help="promtool rule tests (default: alerts.test.yml with the kit's own rules)",
    )
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD, help="Grafana JSON to check")
    parser.add_argument("--units", type=Path, default=UNITS, help="folder of systemd units")
    args = parser.parse_args(argv)
    unknown = [p for p in args.pieces if p not in (*PIECES, "all")]
    if unknown:
        parser.error(f"unknown piece {unknown[0]!r} (choose from {', '.join(PIECES)}, all)")
    pieces = (
        list(PIECES)
        if not args.pieces or "all" in args.pieces
        else list(dict.fromkeys(args.pieces))
    )
    rule_tests = args.rule_tests or (RULE_TESTS if args.rules == RULES else None)

    report = Report()
    exported: dict[str, frozenset[str]] | None = None

    def metrics() -> dict[str, frozenset[str]]:
        nonlocal exported
        if exported is None:
            exported = exported_metrics()
        return exported

    steps: dict[str, Callable[[], None]] = {
        "nginx": lambda: check_nginx(args.site, report),
        "rules": lambda: check_rules(args.rules, report, metrics, tests=rule_tests),
        "dashboard": lambda: check_dashboard(args.dashboard, report, metrics),
        "units": lambda: check_units(args.units, report),
        "consistency": lambda: check_consistency(args.site, report),
    }
    failed: list[str] = []
    missing: list[str] = []
    for piece in pieces:
        print(f"== {piece}", flush=True)
        try:
            steps[piece]()
        except ToolMissing as exc:
            print(f"  MISSING TOOL: {exc} (apt-get install nginx prometheus)", flush=True)
            missing.append(f"{piece} ({exc})")
        except CheckError as exc:
            for line in str(exc).splitlines():
                print(f"  FAIL: {line}", flush=True)
            failed.append(piece)
        else:
            print(f"  ok: {piece}", flush=True)
    passed = len(pieces) - len(failed) - len(missing)
    summary = f"deploy/check: {passed} of {len(pieces)} pieces passed"
    if failed:
        print(f"{summary}; failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if missing:
        print(f"{summary}; not run, tool missing: {', '.join(missing)}", file=sys.stderr)
        return 3
    print(summary + (f" ({len(report.notes)} notes)" if report.notes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
