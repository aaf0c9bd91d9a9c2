"""docs/writing-plugins.md documents exactly the hooks of corenas.hookspecs, with their real
parameter names.

The hook reference in that page has one ``### corenas_xxx`` heading per hook, followed by a fenced
``python`` block whose first line is the hook's signature (``def corenas_xxx(a: T, b: U) -> R``).

Also: docs/quickstart.md starts with the README's command, and links between the pages (and
from the README) reach an existing page and heading.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pluggy
import pytest

import corenas.hookspecs

PAGE = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"

HEADING = re.compile(r"^###\s+`?(corenas_\w+)`?\s*$")
FENCE = re.compile(r"^```")


def hookspec_names() -> set[str]:
    """Names of the functions marked with ``corenas.hookspecs.hookspec``."""
    marked = {
        name
        for name, obj in vars(corenas.hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, f"{corenas.hookspecs.PROJECT}_spec")
    }
    manager = pluggy.PluginManager(corenas.hookspecs.PROJECT)
    manager.add_hookspecs(corenas.hookspecs)
    registered = {name for name in vars(manager.hook) if name.startswith("corenas_")}
    assert marked == registered, (marked, registered)
    return marked


def documented_hooks(text: str) -> dict[str, list[str]]:
    """``{hook name: parameter names}`` from ``### corenas_*`` headings and the signature in the
    first fenced block under each; a heading without a signature maps to ``["<missing>"]``."""
    lines = text.splitlines()
    hooks: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        match = HEADING.match(line)
        if not match:
            continue
        name = match.group(1)
        if name in hooks:
            raise AssertionError(f"hook {name} is documented twice")
        hooks[name] = ["<missing>"]
        block: list[str] = []
        inside = False
        for following in lines[index + 1 :]:
            if not inside and following.startswith("#"):
                break  # next heading before any code block
            if FENCE.match(following):
                if inside:
                    break
                inside = True
                continue
            if inside:
                block.append(following)
        signature = "\n".join(block).strip()
        if not signature.startswith("def "):
            continue
        # the signature may span several lines; cut at the colon ending the def and parse it
        header = signature.split("\n\n")[0].rstrip()
        if not header.endswith(":"):
            header += ":"
        tree = ast.parse(header + "\n    ...")
        function = tree.body[0]
        assert isinstance(function, ast.FunctionDef)
        if function.name != name:
            raise AssertionError(f"heading {name} shows the signature of {function.name}")
        arguments = function.args
        hooks[name] = [
            a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        ]
    return hooks


def real_parameters(name: str) -> list[str]:
    return list(inspect.signature(getattr(corenas.hookspecs, name)).parameters)


def check_page(text: str) -> list[str]:
    """Every difference between the page's hook reference and corenas.hookspecs."""
    problems: list[str] = []
    documented = documented_hooks(text)
    specs = hookspec_names()
    for name in sorted(specs - set(documented)):
        problems.append(f"hook {name} has no '### {name}' section")
    for name in sorted(set(documented) - specs):
        problems.append(f"'### {name}' documents a hook that does not exist")
    for name in sorted(specs & set(documented)):
        if documented[name] != real_parameters(name):
            problems.append(
                f"{name}: documented parameters {documented[name]}, real {real_parameters(name)}"
            )
    return problems


def test_hook_reference_matches_hookspecs() -> None:
    problems = check_page(PAGE.read_text(encoding="utf-8"))
    assert not problems, "docs/writing-plugins.md is out of date:\n" + "\n".join(problems)


def test_every_hook_is_a_heading_once() -> None:
    headings = [
        m.group(1)
        for line in PAGE.read_text(encoding="utf-8").splitlines()
        if (m := HEADING.match(line))
    ]
    assert sorted(headings) == sorted(hookspec_names())


# --- the checker itself must be able to fail ---------------------------------------------------

GOOD = """
### corenas_register_spaces

```python
def corenas_register_spaces(registry: SpaceRegistry) -> None
```
"""


@pytest.fixture
def full_page() -> str:
    return PAGE.read_text(encoding="utf-8")


def test_checker_accepts_a_correct_section() -> None:
    assert documented_hooks(GOOD) == {"corenas_register_spaces": ["registry"]}


def test_checker_reports_a_missing_hook(full_page: str) -> None:
    without = re.sub(r"^### corenas_trial_reported\s*$", "### removed", full_page, flags=re.M)
    assert any("corenas_trial_reported has no" in p for p in check_page(without))


def test_checker_reports_an_unknown_hook(full_page: str) -> None:
    extra = (
        full_page + "\n### corenas_register_losses\n\n```python\ndef corenas_register_"
        "losses(registry) -> None\n```\n"
    )
    assert any("corenas_register_losses" in p for p in check_page(extra))


def test_checker_reports_wrong_parameter_names(full_page: str) -> None:
    wrong = full_page.replace(
        "def corenas_job_finished(job_dir: str, status: str,",
        "def corenas_job_finished(job_dir: str, state: str,",
    )
    assert wrong != full_page, "the page must spell out corenas_job_finished's signature"
    assert any("corenas_job_finished: documented parameters" in p for p in check_page(wrong))


def test_checker_reports_a_section_without_signature() -> None:
    text = "### corenas_config_dirs\n\nReturns directories.\n"
    assert documented_hooks(text) == {"corenas_config_dirs": ["<missing>"]}


# --- the pages agree with the README and with each other ---------------------------------------

DOCS = PAGE.parent
README = DOCS.parent / "README.md"
PENDING_PAGES = {"performance.md"}
"""Pages that other pages link to but that another author may not have added yet."""


def first_command(text: str) -> str:
    """The first command line of the first ``bash``/``console`` block, without its prompt."""
    for block in re.findall(r"```(?:bash|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.strip():
                return line.strip().removeprefix("$ ").strip()
    return ""


def anchors(text: str) -> set[str]:
    """GitHub's anchors of the headings of a Markdown page (code blocks skipped)."""
    found: set[str] = set()
    for heading in re.findall(r"^#+\s+(.*)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or heading anchor does not exist."""
    problems = []
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https://, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        if not linked.exists():
            if linked.name not in PENDING_PAGES:
                problems.append(f"{page.name}: {target} (no such file)")
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            problems.append(f"{page.name}: {target} (no such heading)")
    return problems


def test_quickstart_starts_with_the_readme_command() -> None:
    readme = first_command(README.read_text(encoding="utf-8"))
    assert readme, "README.md has no command block"
    assert first_command((DOCS / "quickstart.md").read_text(encoding="utf-8")) == readme


def test_links_between_pages_resolve() -> None:
    problems = [p for page in sorted([*DOCS.glob("*.md"), README]) for p in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_link_checker_reports_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n## Real heading\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#real-heading) [bad](a.md#no-heading) [gone](c.md)\n")
    assert broken_links(page) == [
        "b.md: a.md#no-heading (no such heading)",
        "b.md: c.md (no such file)",
    ]
