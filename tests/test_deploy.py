"""The container files, checked as they are written (no Docker needed): a build context
that holds only what the image needs, a process that is not root, and no password that
anybody could guess from the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


# --- .dockerignore ---------------------------------------------------------------------


def _patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) for each line of .dockerignore, in order."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append((not negated, re.compile(_glob(pattern))))
    return patterns


def _glob(pattern: str) -> str:
    """Docker's pattern syntax (Go's filepath.Match, plus ``**``) as a regex."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out) + r"\Z"


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative, '/'-separated) out of the build context:
    the last pattern matching it or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for excludes, regex in _patterns():
        if any(regex.match(candidate) for candidate in candidates):
            verdict = excludes
    return verdict


def context_files() -> list[str]:
    """The files ``docker build .`` would send, from the working tree as it is now."""
    reincluded = [regex for excludes, regex in _patterns() if not excludes]
    found = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).as_posix()
        here = "" if here == "." else f"{here}/"
        # Skip folders left out whole (.venv, .git …) unless a '!' line could reach inside.
        dirs[:] = [
            d
            for d in dirs
            if not ignored(here + d)
            or any(r.pattern.startswith(re.escape(here + d) + "/") for r in reincluded)
        ]
        found.extend(here + f for f in files if not ignored(here + f))
    return found


def packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".git/objects/ab/cdef",
        ".venv/bin/python",
        ".cache/uv/bin/uv",
        "var/loa.db",
        "var/demo.db",
        "var/spool/0001.json",
        ".env",
        "tests/test_deploy.py",
        "benchmarks/plan.py",
        "docs/deploy/container.md",
        "Dockerfile",
        "campaigns/__pycache__/spec.cpython-311.pyc",
        "ledger/.env",
        "worker/var.db",
    ],
)
def test_dockerignore_keeps_out_what_the_image_must_not_hold(path):
    assert ignored(path), f"{path} would be in the build context"


def test_dockerignore_lets_in_what_the_image_needs():
    needed = ["pyproject.toml", "uv.lock", "README.md"]
    needed += [f"{package}/__init__.py" for package in packages()]
    needed += [
        "ledger/migrations/env.py",
        "ledger/migrations/script.py.mako",
        "ledger/migrations/versions/0001_initial.py",
        "examples/bluezone.toml",  # `loa demo`
        "examples/ninh-thuan-residents.csv",
        "scripts/verify_export.py",  # copied next to every export
    ]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not ignored(path), f"{path} is left out of the build context"


def test_the_build_context_is_small_and_holds_no_secrets_or_state():
    files = context_files()
    tops = {path.split("/")[0] for path in files}
    assert tops <= {"pyproject.toml", "uv.lock", "README.md", "examples", *packages()}, tops
    assert not [p for p in files if p.endswith((".db", ".pyc")) or "/.env" in f"/{p}"]
    size = sum((ROOT / path).stat().st_size for path in files if (ROOT / path).is_file())
    assert size < 10 * 1024 * 1024, f"{size:,} bytes in the build context"


# --- Dockerfile ------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_image_runs_as_a_fixed_user_that_is_not_root():
    instructions = _instructions()
    last_stage = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    users = [rest for word, rest in instructions[last_stage:] if word == "USER"]
    assert users, "no USER: the processes would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0")
    assert user.isdigit(), "a numeric uid, so that runAsNonRoot-style checks can verify it"
    # Nothing after USER switches back.
    after = instructions[[w for w, _ in instructions].index("USER", last_stage) :]
    assert [rest for word, rest in after if word == "USER"] == [users[-1]]


def test_the_var_dir_is_the_users_alone():
    instructions = _instructions()
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    var_dir = re.search(r"LOA_VAR_DIR=(\S+)", env)
    assert var_dir, "LOA_VAR_DIR is not set in the image"
    uid = [rest for word, rest in instructions if word == "USER"][-1].split(":")[0]
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(rf"install -d -o {uid} -g \d+ -m 0?700 {re.escape(var_dir.group(1))}", runs), (
        "the var dir is not created owned by the image's user with mode 0700"
    )


def test_the_dockerfile_copies_only_what_the_context_lets_in():
    copied = []
    for word, rest in _instructions():
        if word in ("COPY", "ADD"):
            sources = [s for s in rest.split() if not s.startswith("--")][:-1]
            copied.extend(s.rstrip("/") for s in sources)
    assert "." not in copied, "COPY . copies whatever the context holds"
    for source in copied:
        assert (ROOT / source).exists() and not ignored(source), source
    for package in packages():
        assert package in copied, f"the package {package} is not copied into the image"


# --- docker-compose.yml ----------------------------------------------------------------


def _compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


def test_compose_has_no_default_password():
    text = _compose_text()
    # ${VAR:-default} or ${VAR-default} for anything that looks like a secret.
    defaults = re.findall(r"\$\{(\w*(?:PASS|SECRET|TOKEN|KEY)\w*):?-", text, re.IGNORECASE)
    assert not defaults, f"default values for {defaults}"
    uses = re.findall(r"\$\{LOA_DB_PASSWORD([^}]*)\}", text)
    assert uses, "the database password does not come from LOA_DB_PASSWORD"
    for use in uses:
        assert use.startswith(":?") and "LOA_DB_PASSWORD" in use, (
            "every use of LOA_DB_PASSWORD must refuse to start without it, naming it"
        )


def test_compose_publishes_neither_redis_nor_postgres_on_the_host():
    services = yaml.safe_load(_compose_text())["services"]
    for name in ("redis", "postgres"):
        assert "ports" not in services[name], f"{name} is published on the host"
        assert services[name].get("network_mode") != "host"


def test_compose_runs_loa_as_the_images_user():
    services = yaml.safe_load(_compose_text())["services"]
    for name, service in services.items():
        if service.get("image") == "loa":
            assert str(service.get("user", "10001")).split(":")[0] not in ("root", "0"), name


# --- docker-compose.yml, as Compose reads it -------------------------------------------
# `docker compose config` (or Debian's `docker-compose config`) interpolates and merges the
# file the way `up` would, without a daemon. .ci/run installs one when neither is there;
# under CI a missing tool fails these tests instead of skipping them.

LOA_SERVICES = ("migrate", "worker", "webhook", "scheduler", "api", "loa")


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    message = "neither `docker compose` nor `docker-compose` is installed (.ci/run installs one)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def compose_config(project: Path, dotenv: str | None, **env: str) -> subprocess.CompletedProcess:
    """``config`` of the repository's docker-compose.yml for a project folder holding
    ``dotenv`` as its ``.env`` (none when ``None``), with only ``env`` in the environment."""
    if dotenv is not None:
        (project / ".env").write_text(dotenv, encoding="utf-8")
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(project), **env}
    command = [*_compose_command(), "-f", str(ROOT / "docker-compose.yml")]
    command += ["--project-directory", str(project), "-p", "loa", "config"]
    return subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=120
    )


def _services(project: Path, dotenv: str = "LOA_DB_PASSWORD=f00d\n", **env: str) -> dict:
    done = compose_config(project, dotenv, **env)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of each port the service publishes, from
    the short form (`docker-compose`) or the long one (`docker compose`)."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append(
                (
                    port.get("host_ip") or "0.0.0.0",
                    str(port.get("published", "")),
                    str(port["target"]),
                )
            )
            continue
        # [ADDRESS:][HOST_PORT:]PORT[/PROTOCOL]; no address: every address of the host.
        *host, target = str(port).split("/")[0].rsplit(":", 2)
        address, host_port = (["0.0.0.0", ""][: 2 - len(host)] + host)[-2:]
        found.append((address.strip("[]") or "0.0.0.0", host_port, target))
    return found


def test_compose_runs_the_whole_production_set(tmp_path):
    from typer.testing import CliRunner

    from scripts.cli import app

    dotenv = "LOA_DB_PASSWORD=f00d\nLOA_PROVIDERS__GW__TYPE=esms\n"
    services = _services(tmp_path, dotenv)["services"]
    assert set(services) == {"redis", "postgres", *LOA_SERVICES}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("worker", "webhook", "scheduler", "api"):
        service = services[name]
        assert service["command"][0] == name
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "profiles" not in service, f"`docker compose up` would not start {name}"
    # Scalable: nothing that two copies of a worker could not share.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert services["loa"]["profiles"] == ["cli"]  # one-off commands, never started by `up`
    for name in LOA_SERVICES:
        environment = services[name]["environment"]
        assert environment["LOA_DATABASE_URL"] == "postgresql://loa:f00d@postgres:5432/loa"
        assert environment["LOA_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["LOA_PROVIDERS__GW__TYPE"] == "esms", f"{name}: .env not handed in"
    # Each command line is one `loa` takes (options spelt right).
    runner = CliRunner()
    for name in ("migrate", "worker", "webhook", "scheduler", "api"):
        result = runner.invoke(app, [*services[name]["command"], "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_compose_publishes_nothing_beyond_the_loopback_unless_told(tmp_path):
    config = _services(tmp_path)
    ports = {name: published(service) for name, service in config["services"].items()}
    assert ports.pop("webhook") == [("127.0.0.1", "8080", "8080")]
    assert ports.pop("api") == [("127.0.0.1", "8090", "8090")]
    assert not any(ports.values()), ports
    assert not [s for s in config["services"].values() if s.get("network_mode") == "host"]
    # The proxy on the host reaches the webhook from the network's gateway: trusted alone.
    gateway = config["networks"]["default"]["ipam"]["config"][0]["gateway"]
    assert config["services"]["webhook"]["environment"]["FORWARDED_ALLOW_IPS"] == gateway
    assert config["services"]["api"]["environment"]["FORWARDED_ALLOW_IPS"] == gateway
    # Elsewhere only when the operator says so.
    told = _services(tmp_path, "LOA_DB_PASSWORD=f00d\nLOA_WEBHOOK_PUBLISH=0.0.0.0:8443\n"
                     "LOA_API_PUBLISH=10.0.0.5:8090\n")  # fmt: skip
    assert published(told["services"]["webhook"]) == [("0.0.0.0", "8443", "8080")]
    assert published(told["services"]["api"]) == [("10.0.0.5", "8090", "8090")]


def test_compose_refuses_to_start_without_its_secrets(tmp_path):
    done = compose_config(tmp_path, "LOA_PROVIDERS__GW__TYPE=esms\n")
    assert done.returncode != 0
    assert "set LOA_DB_PASSWORD to the ledger database password" in done.stderr
    assert "f00d" not in done.stdout + done.stderr
    (tmp_path / ".env").unlink()
    done = compose_config(tmp_path, None, LOA_DB_PASSWORD="f00d")
    assert done.returncode != 0
    assert ".env" in done.stderr  # the settings file every Loa container gets
