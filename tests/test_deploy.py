"""The container image and the Kubernetes manifests: linted, validated, consistent, and built for real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, missing

MANIFESTS = sorted(
    p for p in (ROOT / "deploy" / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml"
)
CONTAINERFILE = ROOT / "Containerfile"


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        missing(f"{name} (pip install 'draw2digit[test]')")
    return found


def documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers() -> list[dict]:
    found = []
    for doc in documents():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template", {}
        ).get("spec")
        if pod:
            found += pod.get("initContainers", []) + pod.get("containers", [])
    return found


def test_hadolint_passes():
    proc = subprocess.run([tool("hadolint"), str(CONTAINERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(manifest):
    proc = subprocess.run(
        [tool("kubernetes-validate"), "--strict", str(manifest)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout


def test_kustomization_lists_every_applied_manifest():
    listed = set(
        yaml.safe_load((ROOT / "deploy" / "kubernetes" / "kustomization.yaml").read_text())["resources"]
    )
    assert listed == {p.name for p in MANIFESTS} - {"secret.example.yaml", "migrate-job.yaml"}


def test_images_ports_probes_and_settings_match_the_containerfile_and_the_app():
    import tomllib

    from draw2digit.cli import build_parser
    from draw2digit_app import create_app

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    text = CONTAINERFILE.read_text()
    port = re.search(r"^EXPOSE (\d+)", text, re.M).group(1)
    assert re.search(rf"PORT={port}\b", text), "EXPOSE and PORT agree"
    app = create_app({"TESTING": True, "FEEDBACK_DB": "/tmp/unused.sqlite3"})
    routes = {r.rule for r in app.url_map.iter_rules()}
    sources = "".join(
        p.read_text() for d in ("draw2digit", "draw2digit_app") for p in (ROOT / d).rglob("*.py")
    )
    settings = {f"DRAW2DIGIT_{k}" for k in app.config}
    ours = [c for c in containers() if c["image"].split(":")[0].startswith("draw2digit")]
    assert {c["image"] for c in ours} <= {
        f"{n}:{version}" for n in ("draw2digit", "draw2digit-train", "draw2digit-voila")
    }
    for c in ours:
        for env in c.get("env", []):
            name = env["name"]
            assert name in settings or f'"{name}"' in sources, f"{c['name']}: the app never reads {name}"
        command = c.get("command", [])
        if command and command[0] == "draw2digit":
            build_parser().parse_args(command[1:])  # a wrong subcommand or flag exits here
        if c["image"].startswith("draw2digit:") and c.get("ports"):
            assert [p["containerPort"] for p in c["ports"]] == [int(port)]
            assert {e["name"]: e.get("value") for e in c["env"]}["PORT"] == port
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["path"] in routes, probe
            assert (
                c["readinessProbe"]["httpGet"]["path"] == "/ready"
                and c["livenessProbe"]["httpGet"]["path"] == "/health"
            )


BASE = "localhost/debian-min:bookworm"


def podman(*args: str, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.container
@pytest.mark.slow
def test_the_image_builds_and_answers(tmp_path):
    """No registry here: the base image is made from Debian packages (users get a Python image instead)."""
    for needed in ("podman", "debootstrap", "runc"):
        if shutil.which(needed) is None:
            missing(f"{needed} (apt-get install --no-install-recommends podman runc catatonit debootstrap)")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        rootfs = tmp_path / "rootfs"
        boot = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", str(rootfs)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert boot.returncode == 0, boot.stdout[-2000:] + boot.stderr[-2000:]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "-", BASE], stdin=tar.stdout, capture_output=True, text=True
        )
        tar.wait()
        assert imported.returncode == 0, imported.stderr
    ca = "/etc/ssl/certs/ca-certificates.crt"  # pip in the build trusts what the host trusts (a TLS proxy)
    started = time.perf_counter()
    podman(
        "build", "--format", "docker", "--isolation=chroot", "--network=host", "--build-arg", f"BASE={BASE}",
        "-v", f"{ca}:/etc/host-ca.crt:ro", "--build-arg", "PIP_CERT=/etc/host-ca.crt",
        "-t", "draw2digit:test", "-f", str(CONTAINERFILE), str(ROOT),
    )  # fmt: skip
    built_s = time.perf_counter() - started
    size = json.loads(podman("image", "inspect", "draw2digit:test").stdout)[0]["Size"]
    from tests.support.localhost import free_port

    port = free_port()
    name = f"d2d-test-{port}"
    podman(
        "--runtime", "runc", "run", "-d", "--name", name, "--network=host",
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-e", f"PORT={port}",
        "draw2digit:test",
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline, podman("logs", name, check=False).stdout[-3000:]
                time.sleep(0.5)
        with urllib.request.urlopen(url + "/ready", timeout=10) as r:
            assert json.load(r)["status"] == "ready"
        png = (ROOT / "examples" / "4_thin_pen.png").read_bytes()
        req = urllib.request.Request(url + "/predict", png, {"Content-Type": "image/png"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["digit"] == 4
        user = podman("exec", name, "id", "-u").stdout.strip()
        assert user == "10001", "the server runs as a non-root user"
        assert podman("exec", name, "python3", "-c", "import tensorflow", check=False).returncode != 0
    finally:
        podman("rm", "-f", name, check=False)
    print(f"image built in {built_s:.0f} s, {size / 1e6:.0f} MB")
