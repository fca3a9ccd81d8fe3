"""`python -m harness.deploy_check [--root DIR]`: run every check, one line each; exit 1 when one failed."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from harness.deploy_check import compose, dockerfiles, flink_deployment, haproxy, k8s_refs, k8s_render, k8s_schema
from harness.deploy_check.base import unique
from harness.deploy_check.tools import CACHE_DIR, Tools, ensure_all, locked

REPO_ROOT = Path(__file__).resolve().parents[2]


class Skip(Exception):
    """The check's tool cannot be had here: reported as skipped, never as passed."""


@dataclass
class Context:
    root: Path
    tools: Tools
    cache: Path
    notes: list[str] = field(default_factory=list)
    k8s_docs: list[dict[str, Any]] | None = None

    @cached_property
    def compose(self) -> compose.Compose:
        return compose.load(self.root)

    @property
    def rendered(self) -> list[dict[str, Any]]:
        if self.k8s_docs is None:
            raise Skip("k8s/ did not render")
        return self.k8s_docs

    def venv_tool(self, name: str) -> str:
        path = self.tools.venv_bin(name)
        if path is None:
            # The project installs these itself: not having them is a failure, not a skip.
            raise RuntimeError(self.tools.missing.get("venv", "no tools virtualenv"))
        return str(path)


def run_tool(argv: list[str], cwd: Path) -> list[str]:
    """Findings of an external tool: its output when it exits non-zero."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode == 0:
        return []
    return (result.stdout + result.stderr).splitlines() or [f"exit status {result.returncode}"]


def compose_go(ctx: Context) -> list[str]:
    if ctx.tools.compose_go is None:
        raise Skip(ctx.tools.missing.get("compose-go", "no compose-go"))
    # An empty environment: the file must load with its own defaults.
    return run_tool(["env", "-i", f"HOME={Path.home()}", str(ctx.tools.compose_go), "-format", "json",
                     compose.COMPOSE_FILE], ctx.root)


def compose_schema(ctx: Context) -> list[str]:
    return run_tool([ctx.venv_tool("python"), "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                     compose.COMPOSE_FILE], ctx.root)


def haproxy_c(ctx: Context) -> list[str]:
    if ctx.tools.haproxy is None:
        raise Skip(ctx.tools.missing.get("haproxy", "no haproxy"))
    return haproxy.check_haproxy(ctx.root, ctx.compose, ctx.tools.haproxy, ctx.k8s_docs)


def hadolint(ctx: Context) -> list[str]:
    files = sorted(str(p.relative_to(ctx.root)) for p in (ctx.root / "docker").glob("*.Dockerfile"))
    return run_tool([ctx.venv_tool("hadolint"), "--no-color", *files], ctx.root)


def shellcheck(ctx: Context) -> list[str]:
    files = sorted(str(p.relative_to(ctx.root)) for p in (ctx.root / "docker").glob("*.sh"))
    return run_tool([ctx.venv_tool("shellcheck"), *files], ctx.root) if files else []


def k8s_render_check(ctx: Context) -> list[str]:
    try:
        docs, how = k8s_render.render(ctx.root, ctx.tools.kubectl)
    except subprocess.CalledProcessError as e:
        return [f"kubectl kustomize: {line}" for line in (e.stderr or str(e)).splitlines()]
    if how != "kubectl kustomize":
        ctx.notes.append(f"k8s-render: {how}")
    ctx.k8s_docs = docs
    return []


def k8s_schema_check(ctx: Context) -> list[str]:
    rendered = ctx.cache / "k8s.rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(ctx.rendered))
    # Runs in the tools' virtualenv, where kubernetes-validate is; this package's root is on sys.path.
    return run_tool([ctx.venv_tool("python"), "-m", "harness.deploy_check.k8s_schema", str(rendered),
                     ",".join(k8s_schema.K8S_VERSIONS)], REPO_ROOT)


def flink_check(ctx: Context) -> list[str]:
    versions = dockerfiles.flink_version(ctx.root)
    errors, parallelism = flink_deployment.check_flink_deployment(ctx.root, ctx.rendered, versions)
    examples = sorted((ctx.root / k8s_render.K8S_DIR / "operators").glob("*.yaml"))
    return errors + flink_deployment.check_operator_examples(examples, ctx.rendered, parallelism)


CHECKS: list[tuple[str, Callable[[Context], list[str]]]] = [
    ("compose-go", compose_go),
    ("compose-schema", compose_schema),
    ("compose-refs", lambda ctx: compose.check_compose(ctx.root)),
    ("versions", lambda ctx: dockerfiles.check_versions(ctx.root)),
    ("flink-image", lambda ctx: dockerfiles.check_flink_image(ctx.root)),
    ("haproxy-refs", lambda ctx: haproxy.check_compose_front_door(ctx.root, ctx.compose)),
    ("hadolint", hadolint),
    ("lint-shell", shellcheck),
    ("k8s-render", k8s_render_check),
    # After the render: it checks the config with the Kubernetes front door's environment too.
    ("haproxy", haproxy_c),
    ("k8s-schema", k8s_schema_check),
    ("k8s-refs", lambda ctx: k8s_refs.check_builtin(ctx.rendered)),
    ("flink-deployment", flink_check),
]


def run_checks(ctx: Context, checks: list[tuple[str, Callable[[Context], list[str]]]]) -> dict[str, str]:
    """Run the checks, print one line each; {name: "ok" | "failed" | "skipped"}."""
    outcome: dict[str, str] = {}
    for name, check in checks:
        try:
            findings = unique(check(ctx))
        except Skip as why:
            outcome[name] = "skipped"
            print(f"  skipped {name} ({why})", flush=True)
            continue
        except Exception as e:  # a check that crashes on a malformed file fails, the others still run
            findings = [f"{type(e).__name__}: {e}"]
        outcome[name] = "failed" if findings else "ok"
        print(f"  {'FAILED ' if findings else 'ok     '} {name}", flush=True)
        for line in findings:
            print(f"          | {line}")
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.deploy_check", description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to check (default: this one)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    cache = REPO_ROOT / CACHE_DIR
    with locked(cache):
        tools = ensure_all(cache)
        print("deploy_check: docker-compose.yml, docker/, k8s/", flush=True)
        ctx = Context(root, tools, cache)
        outcome = run_checks(ctx, CHECKS)
    for note in ctx.notes:
        print(f"  note: {note}")
    counts = {s: sum(1 for v in outcome.values() if v == s) for s in ("ok", "failed", "skipped")}
    print()
    if counts["skipped"]:
        print(f"deploy_check: {counts['skipped']} check(s) skipped")
    if counts["failed"]:
        print(f"deploy_check: failed: {' '.join(n for n, v in outcome.items() if v == 'failed')}")
    print(f"deploy_check: {counts['ok']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0
